// Connection rate (bench/crr.c) and throughput (iperf3) from one pod namespace to
// another through the node namespace, for: bare, netfence, iptables and iptables+ipset
// at several rule counts. Every round runs every variant once (interleaved); a variant
// is set up right before its measurement and removed right after.
import path from 'node:path';
import { Background, nsRun, onInterrupt, run, runSyncQuiet } from './exec';
import { CRR_BINARY, REPO_ROOT } from './datapath';
import { buildPolicy } from './policy';
import { countLabel } from './report';
import { median, interleave } from './stats';
import { CLIENT_IP, SERVER_IP, Topology } from './topology';

const CRR_PORT = 7000;
const IPERF_PORT = 5201;
const CRR_THREADS = 8;

export type Engine = 'bare' | 'netfence' | 'iptables' | 'ipset';

export interface NetVariant {
  name: string;
  engine: Engine;
  rules: number;
}

export interface NetOptions {
  object: string;
  rounds: number;
  crrSeconds: number;
  iperfSeconds: number;
  /** Rule counts for netfence (0 included) and for iptables / ipset (0 skipped: that is bare). */
  ruleCounts: readonly number[];
  /** Engines left out (and why), e.g. netfence before the datapath is built. */
  skipEngines: Partial<Record<Engine, string>>;
  log: (msg: string) => void;
}

export interface NetResults {
  crr: Record<string, number>;
  throughput: Record<string, number>;
  samples: { crr: Record<string, number[]>; throughput: Record<string, number[]> };
}

export function netVariants(ruleCounts: readonly number[], skip: Partial<Record<Engine, string>> = {}): NetVariant[] {
  const out: NetVariant[] = [{ name: 'bare', engine: 'bare', rules: 0 }];
  for (const engine of ['netfence', 'iptables', 'ipset'] as const) {
    if (skip[engine]) continue;
    for (const n of ruleCounts) {
      if (n === 0 && engine !== 'netfence') continue;
      out.push({ name: `${engine}_${countLabel(n)}`, engine, rules: n });
    }
  }
  return out;
}

/** FORWARD chain for iptables (one rule per CIDR) or ipset (one rule per policy rule). */
export function forwardRules(engine: 'iptables' | 'ipset', rules: number, setPrefix = 'nfb'): { ipset: string; iptables: string } {
  const policy = buildPolicy({ table: 1, cidrs: rules, families: [4], identities: 0, probes: [CLIENT_IP] });
  const lines = ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]'];
  lines.push('-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT');
  const sets: string[] = [];
  if (engine === 'iptables') {
    for (const p of policy.prefixes) lines.push(`-A FORWARD -s ${p} -d ${SERVER_IP}/32 -p tcp -j ACCEPT`);
  } else {
    policy.cidrRules.forEach((prefixes, i) => {
      const set = `${setPrefix}-r${i + 1}`;
      sets.push(`create ${set} hash:net family inet hashsize 1024 maxelem ${Math.max(65536, prefixes.length)}`);
      for (const p of prefixes) sets.push(`add ${set} ${p}`);
      lines.push(`-A FORWARD -m set --match-set ${set} src -d ${SERVER_IP}/32 -p tcp -j ACCEPT`);
    });
  }
  lines.push(`-A FORWARD -d ${SERVER_IP}/32 -j DROP`, 'COMMIT', '');
  return { ipset: sets.length ? `${sets.join('\n')}\n` : '', iptables: lines.join('\n') };
}

/** Sets can stay "in use" for a while after their rules are flushed; every setup uses
 *  fresh set names, so a set that cannot go yet is left to die with the namespace. */
async function destroySets(node: string): Promise<void> {
  await nsRun(node, 'ipset', ['destroy']).catch((e: Error) => {
    if (!/in use/.test(e.message)) throw e;
  });
}

class NetBench {
  private readonly pinDir = `/sys/fs/bpf/nfbench-${process.pid}`;
  private readonly helper = path.join(REPO_ROOT, 'dist', 'bench', 'nf-helper.js');
  private servers: Background[] = [];
  private dropInterrupt = (): void => undefined;
  private setups = 0;

  constructor(
    private readonly topo: Topology,
    private readonly opts: NetOptions,
  ) {}

  async start(): Promise<void> {
    // Servers die with their namespace's processes being killed by pid below.
    this.dropInterrupt = onInterrupt(() => {
      for (const s of this.servers) s.kill();
      this.topo.downSync();
      runSyncQuiet('rm', ['-rf', this.pinDir]);
    });
    await this.topo.up();
    this.servers = [
      new Background('crr server', 'ip', ['netns', 'exec', this.topo.server, CRR_BINARY, 'server', String(CRR_PORT), String(CRR_THREADS)], 'listening'),
      new Background('iperf3 server', 'ip', ['netns', 'exec', this.topo.server, 'iperf3', '-s', '--forceflush', '-p', String(IPERF_PORT)], 'listening'),
    ];
    await Promise.all(this.servers.map((s) => s.ready));
  }

  async stop(): Promise<void> {
    for (const s of this.servers) await s.stop();
    await this.topo.down();
    await run('rm', ['-rf', this.pinDir]).catch(() => undefined);
    this.dropInterrupt();
  }

  async setup(v: NetVariant): Promise<void> {
    const node = this.topo.node;
    if (v.engine === 'netfence') {
      // nsenter, not `ip netns exec`: the latter remounts /sys and hides the bpffs the links are pinned in.
      await run('nsenter', [`--net=/run/netns/${node}`, process.execPath,
        this.helper, 'attach', '--object', this.opts.object, '--pin', this.pinDir, '--cidrs', String(v.rules),
        '--client-if', this.topo.clientVeth, '--server-if', this.topo.serverVeth, '--client-ip', CLIENT_IP,
      ]);
    } else if (v.engine === 'iptables' || v.engine === 'ipset') {
      const r = forwardRules(v.engine, v.rules, `nfb${++this.setups}`);
      if (r.ipset) await nsRun(node, 'ipset', ['restore'], { input: r.ipset });
      await nsRun(node, 'iptables-restore', [], { input: r.iptables });
    }
  }

  /** Back to bare: no programs, no rules, no sets, empty conntrack. */
  async teardown(v: NetVariant): Promise<void> {
    const node = this.topo.node;
    if (v.engine === 'netfence') {
      await run('nsenter', [`--net=/run/netns/${node}`, process.execPath, this.helper, 'detach', '--pin', this.pinDir, '--ifs', `${this.topo.clientVeth},${this.topo.serverVeth}`]);
    } else if (v.engine === 'iptables' || v.engine === 'ipset') {
      await nsRun(node, 'nft', ['flush', 'ruleset']);
      if (v.engine === 'ipset') await destroySets(node);
      await nsRun(node, 'conntrack', ['-F']).catch(() => undefined);
    }
  }

  async crr(): Promise<number> {
    const { stdout } = await nsRun(this.topo.client, CRR_BINARY, ['client', SERVER_IP, String(CRR_PORT), String(CRR_THREADS), String(this.opts.crrSeconds)], {
      timeoutMs: (this.opts.crrSeconds + 30) * 1000,
    });
    const [conns, , rate] = stdout.trim().split(/\s+/).map(Number);
    if (!(conns > 0)) throw new Error(`run crr client: no connection completed (${stdout.trim()})`);
    return rate;
  }

  async iperf(): Promise<number> {
    const { stdout } = await nsRun(this.topo.client, 'iperf3', ['-c', SERVER_IP, '-p', String(IPERF_PORT), '-t', String(this.opts.iperfSeconds), '-J'], {
      timeoutMs: (this.opts.iperfSeconds + 30) * 1000,
    });
    const j = JSON.parse(stdout) as { end?: { sum_received?: { bits_per_second?: number } }; error?: string };
    const bps = j.end?.sum_received?.bits_per_second;
    if (!bps) throw new Error(`run iperf3: ${j.error ?? 'no sum_received in its JSON'}`);
    return bps / 1e9;
  }
}

export async function runNet(opts: NetOptions): Promise<NetResults> {
  const variants = netVariants(opts.ruleCounts, opts.skipEngines);
  const topo = new Topology();
  const bench = new NetBench(topo, opts);
  const crr: Record<string, number[]> = Object.fromEntries(variants.map((v) => [v.name, []]));
  const tput: Record<string, number[]> = Object.fromEntries(variants.map((v) => [v.name, []]));
  try {
    await bench.start();
    for (const { round, variant } of interleave(variants, opts.rounds)) {
      await bench.setup(variant);
      try {
        crr[variant.name].push(await bench.crr());
        tput[variant.name].push(await bench.iperf());
      } finally {
        await bench.teardown(variant);
      }
      opts.log(
        `net: round ${round + 1}/${opts.rounds} ${variant.name}: ${Math.round(crr[variant.name].at(-1)!)} conn/s, ` +
          `${tput[variant.name].at(-1)!.toFixed(2)} Gbit/s`,
      );
    }
  } finally {
    await bench.stop();
  }
  const med = (s: Record<string, number[]>): Record<string, number> =>
    Object.fromEntries(Object.entries(s).map(([k, v]) => [k, median(v)]));
  return { crr: med(crr), throughput: med(tput), samples: { crr, throughput: tput } };
}
