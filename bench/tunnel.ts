// The transparent tunnel's modes measured against each other in a lab node with its agent
// (DESIGN.md §3: "choose the default by measurement"). Two pods of one node plus a UDP
// service behind an iptables-DNAT ClusterIP whose backend is on the same node. Rounds are
// interleaved (off fwmark direct off ...); a mode switch rewrites the NetfenceConfig and
// waits for the agent's readiness barrier. Per round and mode: DNS-like queries through the
// ClusterIP (each lost one counted) and the connection rate between the two pods.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { waitForAgents } from '../src/lab/barrier';
import { labScript, nsRun } from '../src/lab/exec';
import { AGENT_METRICS_ADDRESS, labDown, labNameFor, labUp } from '../src/lab/lifecycle';
import { fabricCounters } from '../src/lab/probe';
import { agentCommandAvailable, cliMain, startAgent } from '../src/lab/processes';
import { labWorkDir, saveState, type LabState } from '../src/lab/state';
import { writeAtomic } from '../src/lab/workdir';
import { loadStateDirAsync } from '../src/sources/directory';
import { CRR_BINARY } from './datapath';
import { Background, onInterrupt, runSyncQuiet } from './exec';
import { median, interleave } from './stats';
import { defaultTunnelMode, TUNNEL_MODES } from './tunnel-report';
import type { TunnelModeResult, TunnelResults } from './types';

type Mode = (typeof TUNNEL_MODES)[number];

const PREFIX = 'nfbt-';
const CLIENT = { key: 'demo/a', ip: '10.244.1.2' };
const SERVER = { key: 'demo/b', ip: '10.244.1.3' };
const DNS = { clusterIP: '10.96.0.10', port: 53 };
const CRR_PORT = 7000;
const CRR_THREADS = 8;
// Generous: a collision in conntrack drops the reply for good, while a client descheduled on a
// busy machine would see its timers fire before the answers it already has.
const DNS_TIMEOUT_MS = 1000;

const pod = (name: string, ip: string): string => `apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: demo, labels: { app: ${name} } }
spec: { nodeName: n1, containers: [{ name: c, image: x, ports: [{ containerPort: 53, protocol: UDP }] }] }
status: { podIPs: [{ ip: ${ip} }] }
`;

const CLUSTER = [
  'apiVersion: v1\nkind: Namespace\nmetadata: { name: demo }\n',
  'apiVersion: v1\nkind: Node\nmetadata: { name: n1 }\nstatus: { addresses: [{ type: InternalIP, address: 192.168.50.11 }] }\n',
  pod('a', CLIENT.ip),
  pod('b', SERVER.ip),
  pod('dns', '10.244.1.9'),
  `apiVersion: v1
kind: Service
metadata: { name: dns, namespace: demo }
spec: { clusterIP: ${DNS.clusterIP}, selector: { app: dns }, ports: [{ port: ${DNS.port}, targetPort: 53, protocol: UDP }] }
`,
].join('---\n');

const config = (mode: Mode): string =>
  'apiVersion: netfence.io/v1alpha1\nkind: NetfenceConfig\nmetadata: { name: netfence }\nhostInterfaces: [eth0]\nserviceCIDRs: [10.96.0.0/16]\n' +
  (mode === 'off' ? '' : `redirect: { mode: ${mode}, uplink: eth0, gateway: 169.254.0.1 }\n`);

export interface TunnelOptions {
  /** The BPF object the agent loads (run.ts --object). */
  object: string;
  rounds: number;
  crrSeconds: number;
  /** DNS-like queries per round and mode. */
  queries: number;
  log: (msg: string) => void;
}

class TunnelLab {
  private crrServer?: Background;
  private constructor(
    readonly state: LabState,
    private readonly log: (msg: string) => void,
  ) {}

  static async up(stateDir: string, object: string, log: (msg: string) => void): Promise<TunnelLab> {
    writeFileSync(path.join(stateDir, 'cluster.yaml'), CLUSTER);
    writeFileSync(path.join(stateDir, 'netfence.yaml'), config('off'));
    const snapshot = await loadStateDirAsync(stateDir);
    if (snapshot.errors.length > 0) throw new Error(`load ${stateDir}: ${JSON.stringify(snapshot.errors)}`);
    const state = await labUp(snapshot, { stateDir, prefix: PREFIX, agents: false });
    // The agent started here rather than by labUp: it loads the object under test.
    const node = state.plan!.nodes[0];
    const bpffsRoot = path.join(state.bpffsRoot, node.name);
    mkdirSync(bpffsRoot, { recursive: true });
    const agent = startAgent(
      {
        node: node.name,
        netns: node.netns,
        stateDir,
        bpffsRoot,
        metricsAddress: AGENT_METRICS_ADDRESS,
        extraArgs: ['--object', object],
      },
      state.workDir,
    );
    state.agents.push({
      node: node.name,
      netns: node.netns,
      pid: agent.pid,
      metricsAddress: AGENT_METRICS_ADDRESS,
      log: agent.log,
    });
    state.pids.push(agent.pid);
    saveState(state);
    await waitForAgents(state);
    const lab = new TunnelLab(state, log);
    lab.crrServer = new Background(
      'crr server',
      'ip',
      ['netns', 'exec', lab.netns(SERVER.key), CRR_BINARY, 'server', String(CRR_PORT), String(CRR_THREADS)],
      'listening',
    );
    await lab.crrServer.ready;
    // Each mode's connections leave TIME_WAIT sockets in the client; without reuse the next
    // mode in the round would run short of source ports.
    await nsRun(lab.netns(CLIENT.key), [
      'sysctl',
      '-qw',
      'net.ipv4.tcp_tw_reuse=1',
      'net.ipv4.ip_local_port_range=1024 65535',
    ]);
    return lab;
  }

  async stop(): Promise<void> {
    await this.crrServer?.stop();
  }

  netns(key: string): string {
    const p = this.state.plan!.pods.find((x) => x.key === key);
    if (!p) throw new Error(`find lab pod ${key}: not in the plan`);
    return p.netns;
  }

  /** Rewrites the config and waits until the agent enforces it, with the tunnel as asked. */
  async switchTo(mode: Mode): Promise<void> {
    writeAtomic(path.join(this.state.agentStateDir, 'netfence.yaml'), config(mode));
    const [ready] = await waitForAgents(this.state);
    const tunnel = ready.body.tunnel as { mode?: string; enabled?: boolean; error?: string } | undefined;
    const ok = mode === 'off' ? tunnel === undefined : tunnel?.mode === mode && tunnel.enabled === true;
    if (!ok)
      throw new Error(`switch the tunnel to ${mode}: the agent reports ${JSON.stringify(tunnel ?? 'no tunnel')}`);
  }

  /** One measurement: flows of the previous mode forgotten, DNS queries, then connection rate. */
  async measure(mode: Mode, opts: TunnelOptions): Promise<{ connPerSec: number; lost: number; hairpins: number }> {
    const plan = this.state.plan!;
    for (const ns of [plan.nodes[0].netns, plan.fabricNetns]) await nsRun(ns, ['conntrack', '-F']);
    const before = (await fabricCounters(this.state)).get('hairpin:n1') ?? 0;
    const dns = await nsRun(
      this.netns(CLIENT.key),
      [
        process.execPath,
        labScript('client'),
        'udpflood',
        DNS.clusterIP,
        String(DNS.port),
        String(opts.queries),
        String(DNS_TIMEOUT_MS),
      ],
      undefined,
      120_000,
    );
    const { received } = JSON.parse(dns.stdout) as { received: number };
    const crr = await nsRun(
      this.netns(CLIENT.key),
      [CRR_BINARY, 'client', SERVER.ip, String(CRR_PORT), String(CRR_THREADS), String(opts.crrSeconds)],
      undefined,
      (opts.crrSeconds + 30) * 1000,
    );
    const [conns, , rate, failed] = crr.stdout.trim().split(/\s+/).map(Number);
    if (!(conns > 0))
      throw new Error(`run crr client (tunnel ${mode}): no connection completed (${crr.stdout.trim()})`);
    if (failed > 0) this.log(`tunnel: ${mode}: ${failed} of ${conns + failed} connections failed`);
    const hairpins = ((await fabricCounters(this.state)).get('hairpin:n1') ?? 0) - before;
    // The gateway's counter proves which path the traffic took.
    if ((mode === 'off') !== (hairpins === 0))
      throw new Error(`measure tunnel ${mode}: the gateway counted ${hairpins} hairpinned packets`);
    return { connPerSec: rate, lost: opts.queries - received, hairpins };
  }
}

export async function runTunnel(opts: TunnelOptions): Promise<TunnelResults | string> {
  if (!existsSync(CRR_BINARY)) return 'bench helpers not built (make -C bench)';
  if (!(await agentCommandAvailable())) return 'netfence CLI not built (dist/src/cli/main.js)';
  const stateDir = mkdtempSync('/tmp/nfb-tunnel-');
  const name = labNameFor(stateDir, PREFIX);
  const dropInterrupt = onInterrupt(() => {
    runSyncQuiet(process.execPath, [cliMain()!, 'lab', 'down', '--state', stateDir, '--prefix', PREFIX]);
    runSyncQuiet('rm', ['-rf', stateDir]);
  });
  const samples = Object.fromEntries(
    TUNNEL_MODES.map((m) => [m, { conn: [] as number[], lost: 0, hairpins: 0 }]),
  ) as Record<Mode, { conn: number[]; lost: number; hairpins: number }>;
  let lab: TunnelLab | undefined;
  try {
    opts.log('tunnel: lab up');
    lab = await TunnelLab.up(stateDir, opts.object, opts.log);
    for (const { round, variant: mode } of interleave(TUNNEL_MODES, opts.rounds)) {
      await lab.switchTo(mode);
      const m = await lab.measure(mode, opts);
      const s = samples[mode];
      s.conn.push(m.connPerSec);
      s.lost += m.lost;
      s.hairpins += m.hairpins;
      opts.log(
        `tunnel: round ${round + 1}/${opts.rounds} ${mode}: ${Math.round(m.connPerSec)} conn/s, DNS lost ${m.lost}/${opts.queries}`,
      );
    }
  } catch (e) {
    // lab down removes the agent's log: show its end first.
    const agentLog = path.join(labWorkDir(name), 'agent-n1.log');
    if (existsSync(agentLog)) opts.log(`tunnel: agent log (end):\n${readFileSync(agentLog, 'utf8').slice(-3000)}`);
    throw e;
  } finally {
    await lab?.stop();
    await labDown(name).catch((e: Error) => opts.log(`tunnel: lab down: ${e.message}`));
    rmSync(stateDir, { recursive: true, force: true });
    dropInterrupt();
  }
  const result = (m: Mode): TunnelModeResult => ({
    connPerSec: median(samples[m].conn),
    connPerSecSamples: samples[m].conn,
    dnsLost: samples[m].lost,
    dnsQueries: opts.queries * opts.rounds,
    hairpinPackets: samples[m].hairpins,
  });
  return {
    rounds: opts.rounds,
    crrSeconds: opts.crrSeconds,
    defaultMode: defaultTunnelMode(),
    off: result('off'),
    fwmark: result('fwmark'),
    direct: result('direct'),
  };
}
