// `netfence flows`: drop events from the pinned nf_events ring buffer as Hubble-style
// flow records, names from the agent's names file (re-read when the agent rewrites it).
// A BPF ring buffer has one consumer position: while the agent also reads it (to log
// flows), each event reaches only one of the two readers.
import type { Command } from 'commander';
import fs from 'node:fs';
import path from 'node:path';
import { toFlow, type FlowContext, type FlowEndpoint, type FlowRecord } from '../agent/flows';
import { namesFilePath, readNamesFile, type NamesFile } from '../agent/names-file';
import { decodeEvent } from '../datapath/codecs';
import { DEFAULT_BPFFS_ROOT } from '../datapath/loader';

export function flowContextFromNames(names?: NamesFile): FlowContext {
  const podByIp = new Map<string, FlowEndpoint>((names?.pods ?? []).map((p) => [p.ip, { namespace: p.namespace, pod_name: p.pod_name }]));
  return { podByIp, compiled: { policies: names?.policies ?? [], rules: names?.rules ?? [], endpoints: names?.endpoints ?? [] }, isolation: names?.isolation };
}

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

/** Names that follow the agent's rewrites: the file is re-read when its mtime changes. */
class NamesWatcher {
  private mtime = -1;
  private ctx: FlowContext = flowContextFromNames();
  private readonly file: string;
  constructor(bpffsRoot: string, file?: string) {
    this.file = file ?? namesFilePath(bpffsRoot);
  }
  context(): FlowContext {
    const mtime = fs.statSync(this.file, { throwIfNoEntry: false })?.mtimeMs ?? 0;
    if (mtime !== this.mtime) {
      this.mtime = mtime;
      this.ctx = flowContextFromNames(mtime ? readNamesFile(this.file) : undefined);
    }
    return this.ctx;
  }
}

export function register(program: Command): void {
  program
    .command('flows')
    .description('stream drop events from the pinned ring buffer as Hubble-style flow records')
    .option('--bpffs-root <path>', 'bpffs directory of the pinned maps', DEFAULT_BPFFS_ROOT)
    .option('--names <file>', 'names file (default: /run/netfence/<hash of the bpffs root>/names.json)')
    .option('--count <n>', 'exit after n records', (v) => Number.parseInt(v, 10))
    .option('--json', 'one JSON flow record per line')
    .action(async (opts: { bpffsRoot: string; names?: string; count?: number; json?: boolean }) => {
      const { native } = await import('../datapath/native');
      const pin = path.join(opts.bpffsRoot, 'nf_events');
      if (!fs.existsSync(pin)) throw new Error(`open ${pin}: no pinned event ring buffer (is the agent running with this --bpffs-root?)`);
      const names = new NamesWatcher(opts.bpffsRoot, opts.names);
      const map = native.mapOpenPinned(pin);
      let seen = 0;
      await new Promise<void>((resolve) => {
        const ring = native.ringBufferOpen(map.fd, (sample) => {
          if (opts.count !== undefined && seen >= opts.count) return;
          const flow = toFlow(decodeEvent(sample), names.context());
          process.stdout.write((opts.json ? JSON.stringify(flow) : formatFlow(flow)) + '\n');
          if (opts.count !== undefined && ++seen >= opts.count) stop();
        });
        let stopped = false;
        const stop = () => {
          if (stopped) return;
          stopped = true;
          ring.close();
          native.closeFd(map.fd);
          resolve();
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        process.stderr.write(`netfence flows: reading ${pin}\n`);
      });
    });
}
