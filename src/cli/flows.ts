// `netfence flows`: drop events as Hubble-style flow records, from the running agent over
// its socket. The agent is the only reader of the pinned ring buffer (a BPF ring buffer
// has one consumer position: two readers would each see only part of the events) and
// sends every record, names resolved, to each subscribed client.
import type { Command } from 'commander';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { agentSocketPath } from '../agent/agent-socket';
import { decodeResponse, encode } from '../cni/protocol';
import type { FlowEndpoint, FlowRecord } from '../agent/flows';
import { DEFAULT_BPFFS_ROOT } from '../datapath/loader';

export function formatFlow(f: FlowRecord): string {
  const side = (e: FlowEndpoint, ip: string, port?: number) => {
    const addr = port === undefined ? ip : ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
    return e.pod_name ? `${e.namespace}/${e.pod_name} (${addr})` : addr;
  };
  const [proto, ports] = Object.entries(f.l4)[0] ?? ['?', {}];
  const by = f.policy ? ` by ${f.policy}${f.rule ? ` ${f.rule}` : ''}` : '';
  return (
    `${f.time} ${f.verdict} ${f.traffic_direction} ${proto} ` +
    `${side(f.source, f.IP.source, ports.source_port)} -> ${side(f.destination, f.IP.destination, ports.destination_port)} ` +
    `${f.drop_reason_desc}${by}`
  );
}

/**
 * Subscribes on the agent socket and hands each record to `onFlow` until it returns
 * false, a signal arrives, or (an error) the agent closes the stream.
 */
export function followFlows(
  socket: string,
  onFlow: (f: FlowRecord) => boolean,
  onSubscribed: () => void = () => {},
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const sock = net.connect(socket);
    let subscribed = false;
    let done = false;
    const finish = (err?: Error): void => {
      if (done) return;
      done = true;
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      sock.destroy();
      if (err) reject(err);
      else resolve();
    };
    const stop = (): void => finish();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    sock.once('connect', () => sock.write(encode({ op: 'flows' })));
    sock.once('error', (e) =>
      finish(new Error(`follow flows on ${socket}: ${e.message} (is the agent running with this --bpffs-root?)`)),
    );
    sock.once('close', () => finish(new Error(`follow flows on ${socket}: the agent closed the stream`)));
    createInterface({ input: sock, crlfDelay: Infinity }).on('line', (line) => {
      if (done) return;
      try {
        if (!subscribed) {
          const res = decodeResponse(line);
          if (!res.ok) throw new Error(res.error);
          subscribed = true;
          onSubscribed();
        } else if (!onFlow(JSON.parse(line) as FlowRecord)) {
          finish();
        }
      } catch (e) {
        finish(new Error(`follow flows on ${socket}: ${(e as Error).message}`));
      }
    });
  });
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--count: expected a positive integer, got "${v}"`);
  return n;
}

export function register(program: Command): void {
  program
    .command('flows')
    .description('stream drop events from the running agent as Hubble-style flow records')
    .option('--bpffs-root <path>', 'bpffs root of the agent to follow', DEFAULT_BPFFS_ROOT)
    .option('--socket <path>', 'agent socket (default: /run/netfence/<hash of the bpffs root>/agent.sock)')
    .option('--count <n>', 'exit after n records', positiveInt)
    .option('--json', 'one JSON flow record per line')
    .action(async (opts: { bpffsRoot: string; socket?: string; count?: number; json?: boolean }) => {
      const socket = opts.socket ?? agentSocketPath(opts.bpffsRoot);
      let seen = 0;
      await followFlows(
        socket,
        (flow) => {
          process.stdout.write((opts.json ? JSON.stringify(flow) : formatFlow(flow)) + '\n');
          return opts.count === undefined || ++seen < opts.count;
        },
        () => process.stderr.write(`netfence flows: following ${socket}\n`),
      );
    });
}
