// Connection rate (bench/crr.c) and throughput (iperf3) from one pod namespace to
// another through the node namespace, for: bare, an empty tc program on the hooks
// (the floor any tc classifier pays), netfence, iptables and iptables+ipset at several
// rule counts. Every round runs every variant once (interleaved); a variant
// is set up right before its measurement and removed right after, and the node
// namespace's netfilter state is checked around every measurement.
import os from 'node:os';
import path from 'node:path';
import type { NativeAddon } from '../src/datapath/native-api';
import { nsRun, run } from '../src/lab/exec';
import { Background, LineChild, onInterrupt, runSyncQuiet } from './exec';
import { CRR_BINARY, EMPTY_OBJECT, REPO_ROOT } from './datapath';
import { buildPolicy } from './policy';
import { countLabel } from './report';
import { median } from './stats';
import { CLIENT_IP, OUTSIDER_IP, SERVER_IP, Topology } from './topology';
import type { PairedCrr, ProgramCost } from './types';

const CRR_PORT = 7000;
const IPERF_PORT = 5201;
// Client and server each pinned to their own CPU with a few blocking threads: the
// client's CPU, which also runs the softirq work of every packet it sends (the SYN's
// whole path through the node and the server's SYN-ACK), is saturated, so the rate is
// the inverse of the per-connection CPU cost. Unpinned 8+8 threads on 2 CPUs varied
// 20-30% between identical rounds; pinned, about 5%.
const CRR_THREADS = 4;
const CRR_CLIENT_CPU = 0;
const CRR_SERVER_CPU = 1;
/** Connections in the first moments after a set-up (deferred frees, cold caches) are not counted. */
const CRR_WARMUP_MS = 500;
/** A dropped SYN is retransmitted after 1 s: a probe not answered in this time was dropped. */
const PROBE_TIMEOUT_MS = 500;
const PROBE_TRIES = 3;
const PROGRAM_COST_SECONDS = 2;

export type Engine = 'bare' | 'emptyprog' | 'netfence' | 'iptables' | 'ipset';

export interface NetVariant {
  name: string;
  engine: Engine;
  rules: number;
  /** emptyprog: the server veth's two hooks (where netfence_N>0 runs) or all four. */
  hooks?: 2 | 4;
  /** netfence: both pods delivered locally (the default) or through the node's stack. */
  localDelivery?: boolean;
}

export interface NetOptions {
  object: string;
  rounds: number;
  crrSeconds: number;
  iperfSeconds: number;
  /** Tight bare / variant pairs (PairedCrr) for emptyprog_2hooks and the largest netfence
   *  variant, and the seconds of each run in them. */
  pairs: number;
  pairSeconds: number;
  /** Rule counts for netfence (0 included) and for iptables / ipset (0 skipped: that is bare). */
  ruleCounts: readonly number[];
  /** Engines left out (and why), e.g. netfence before the datapath is built. */
  skipEngines: Partial<Record<Engine, string>>;
  /** For the programs' run statistics (ProgramCost); without it they are not measured. */
  addon?: NativeAddon;
  log: (msg: string) => void;
}

export interface NetResults {
  programCost: Record<string, ProgramCost>;
  crrPaired: Record<string, PairedCrr>;
  crr: Record<string, number>;
  throughput: Record<string, number>;
  samples: { crr: Record<string, number[]>; throughput: Record<string, number[]> };
}

export function netVariants(ruleCounts: readonly number[], skip: Partial<Record<Engine, string>> = {}): NetVariant[] {
  const out: NetVariant[] = [{ name: 'bare', engine: 'bare', rules: 0 }];
  for (const hooks of [2, 4] as const)
    out.push({ name: `emptyprog_${hooks}hooks`, engine: 'emptyprog', rules: 0, hooks });
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
export function forwardRules(
  engine: 'iptables' | 'ipset',
  rules: number,
  setPrefix = 'nfb',
): { ipset: string; iptables: string } {
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

/** The variants measured in tight pairs too: the empty-program floor and the largest netfence. */
export function pairedVariants(variants: readonly NetVariant[]): NetVariant[] {
  const largest = variants.filter((v) => v.engine === 'netfence').at(-1);
  return variants.filter((v) => v.name === 'emptyprog_2hooks' || v === largest);
}

function usesNetfilter(v: NetVariant): boolean {
  return v.engine === 'iptables' || v.engine === 'ipset';
}

/** The measurement order of one round: the target comparisons (bare, netfence at the
 *  largest count, ipset at the largest count) run back to back so load from outside
 *  the benchmark shifts them together; odd rounds run the order backwards so a slow
 *  drift favours no position. */
export function roundOrder<T extends { name: string }>(variants: readonly T[], round: number): T[] {
  const largest = (engine: string): string | undefined =>
    variants.filter((v) => v.name.startsWith(`${engine}_`)).at(-1)?.name;
  const first = ['bare', largest('netfence'), largest('ipset')];
  const order = [...variants].sort((a, b) => rank(first, a.name) - rank(first, b.name));
  return round % 2 === 1 ? order.reverse() : order;
}

function rank(first: readonly (string | undefined)[], name: string): number {
  const i = first.indexOf(name);
  return i < 0 ? first.length : i;
}

/** Sets can stay "in use" for a while after their rules are flushed; every setup uses
 *  fresh set names, so a set that cannot go yet is left to die with the namespace. */
async function destroySets(node: string): Promise<void> {
  await nsRun(node, ['ipset', 'destroy']).catch((e: Error) => {
    if (!/in use/.test(e.message)) throw e;
  });
}

export class NetBench {
  private readonly pinDir = `/sys/fs/bpf/nfbench-${process.pid}`;
  private readonly helper = path.join(REPO_ROOT, 'dist', 'bench', 'nf-helper.js');
  private servers: Background[] = [];
  /** Programs the current variant put on the hooks. */
  private progIds: number[] = [];
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
      new Background(
        'crr server',
        'ip',
        [
          'netns',
          'exec',
          this.topo.server,
          CRR_BINARY,
          'server',
          String(CRR_PORT),
          String(CRR_THREADS),
          this.cpu(CRR_SERVER_CPU),
        ],
        'listening',
      ),
      new Background(
        'iperf3 server',
        'ip',
        ['netns', 'exec', this.topo.server, 'iperf3', '-s', '--forceflush', '-p', String(IPERF_PORT)],
        'listening',
      ),
    ];
    await Promise.all(this.servers.map((s) => s.ready));
  }

  /** Pinning needs two CPUs; on one, both share it unpinned. */
  private cpu(which: number): string {
    return os.cpus().length > Math.max(CRR_CLIENT_CPU, CRR_SERVER_CPU) ? String(which) : 'any';
  }

  async stop(): Promise<void> {
    for (const s of this.servers) await s.stop();
    await this.topo.down();
    await run(['rm', '-rf', this.pinDir]).catch(() => undefined);
    this.dropInterrupt();
  }

  async setup(v: NetVariant): Promise<void> {
    const node = this.topo.node;
    this.progIds = [];
    const helper = async (args: string[]): Promise<void> => {
      const { stdout } = await run(['nsenter', ...this.helperArgv(args)]);
      this.progIds = (JSON.parse(stdout) as { progIds: number[] }).progIds;
    };
    if (v.engine === 'emptyprog') {
      await helper(['attach-empty', ...this.programArgs(v)]);
    } else if (v.engine === 'netfence') {
      await helper(['attach', ...this.programArgs(v)]);
    } else if (v.engine === 'iptables' || v.engine === 'ipset') {
      const r = forwardRules(v.engine, v.rules, `nfb${++this.setups}`);
      if (r.ipset) await nsRun(node, ['ipset', 'restore'], r.ipset);
      await nsRun(node, ['iptables-restore'], r.iptables);
    }
  }

  /** nsenter's arguments for nf-helper with `args` in the node namespace. nsenter, not
   *  `ip netns exec`: the latter remounts /sys and hides the bpffs the links are pinned in. */
  private helperArgv(args: readonly string[]): string[] {
    return [`--net=/run/netns/${this.topo.node}`, process.execPath, this.helper, ...args];
  }

  /** nf-helper options of a variant with programs (attach, attach-empty, serve). */
  private programArgs(v: NetVariant): string[] {
    if (v.engine === 'emptyprog') {
      const ifs = v.hooks === 4 ? [this.topo.serverVeth, this.topo.clientVeth] : [this.topo.serverVeth];
      return ['--object', EMPTY_OBJECT, '--pin', this.pinDir, '--ifs', ifs.join(',')];
    }
    return [
      '--object',
      this.opts.object,
      '--pin',
      this.pinDir,
      '--cidrs',
      String(v.rules),
      '--client-if',
      this.topo.clientVeth,
      '--server-if',
      this.topo.serverVeth,
      '--client-ip',
      CLIENT_IP,
      '--server-ip',
      SERVER_IP,
      '--local-delivery',
      v.localDelivery === false ? 'off' : 'on',
    ];
  }

  /** PairedCrr of variant v. */
  async paired(v: NetVariant): Promise<PairedCrr> {
    const pairs = await this.pairedRuns(v, async () => (await this.crr(this.opts.pairSeconds)).rate);
    return { pairs, ratio: median(pairs.map((p) => p.variant / p.bare)) };
  }

  /** `measure` in tight pairs: v's object set up once, then `pairs` pairs of short runs,
   *  bare (programs detached) and v (attached), the order alternating pair by pair. */
  async pairedRuns<T>(v: NetVariant, measure: () => Promise<T>): Promise<{ bare: T; variant: T }[]> {
    const serve = new LineChild(
      `nf-helper serve ${v.name}`,
      'nsenter',
      this.helperArgv(['serve', ...(v.engine === 'emptyprog' ? ['--empty'] : []), ...this.programArgs(v)]),
    );
    const set = async (on: boolean): Promise<void> => {
      const answer = await serve.ask(on ? 'on' : 'off');
      if (on ? !answer.startsWith('{"progIds"') : answer !== 'off')
        throw new Error(`${serve.label}: unexpected answer "${answer}"`);
    };
    const pairs: { bare: T; variant: T }[] = [];
    try {
      await set(true);
      await this.checkEnforced(v);
      for (let i = 0; i < this.opts.pairs; i++) {
        const pair: Partial<{ bare: T; variant: T }> = {};
        for (const on of i % 2 ? [true, false] : [false, true]) {
          await set(on);
          pair[on ? 'variant' : 'bare'] = await measure();
        }
        pairs.push(pair as { bare: T; variant: T });
      }
      await set(false);
    } finally {
      await serve.close();
    }
    await this.checkConntrack(v);
    return pairs;
  }

  /** Back to bare: no programs, no rules, no sets, empty conntrack. */
  async teardown(v: NetVariant): Promise<void> {
    const node = this.topo.node;
    if (v.engine === 'netfence' || v.engine === 'emptyprog') {
      await run([
        'nsenter',
        ...this.helperArgv([
          'detach',
          '--pin',
          this.pinDir,
          '--ifs',
          `${this.topo.clientVeth},${this.topo.serverVeth}`,
        ]),
      ]);
    } else if (v.engine === 'iptables' || v.engine === 'ipset') {
      await nsRun(node, ['nft', 'flush', 'ruleset']);
      if (v.engine === 'ipset') await destroySets(node);
      await nsRun(node, ['conntrack', '-F']).catch(() => undefined);
    }
  }

  /** Fails unless the node namespace has no nftables/iptables-nft rules: bare and
   *  netfence variants measure a path without netfilter rules. */
  async checkNoRules(v: NetVariant): Promise<void> {
    const { stdout } = await nsRun(this.topo.node, ['nft', 'list', 'ruleset']);
    if (stdout.trim())
      throw new Error(
        `measure ${v.name}: the node namespace still has netfilter rules: ${stdout.trim().slice(0, 200)}`,
      );
  }

  /** After a measurement: bare and netfence must have left the node's conntrack table
   *  empty (no conntrack hook still registered by an earlier iptables variant); the
   *  iptables variants must have tracked connections (their rules were in the path). */
  async checkConntrack(v: NetVariant): Promise<void> {
    const { stdout } = await nsRun(this.topo.node, ['conntrack', '-C']);
    const tracked = Number(stdout.trim());
    const netfilter = usesNetfilter(v);
    if (!Number.isInteger(tracked))
      throw new Error(`count conntrack entries after ${v.name}: unexpected output "${stdout.trim()}"`);
    if (netfilter ? tracked === 0 : tracked > 0) {
      throw new Error(
        `measure ${v.name}: ${tracked} conntrack entries in the node namespace, expected ${netfilter ? 'some' : 'none'}`,
      );
    }
  }

  /** The variant is real: with rules, the server is isolated (a request from an address
   *  outside the table is dropped); without, it is not (which checks the probe itself). */
  async checkEnforced(v: NetVariant): Promise<void> {
    const isolated = v.rules > 0;
    const probe = (): Promise<boolean> =>
      nsRun(this.topo.client, [
        CRR_BINARY,
        'probe',
        SERVER_IP,
        String(CRR_PORT),
        OUTSIDER_IP,
        String(PROBE_TIMEOUT_MS),
      ]).then(
        () => true,
        (e: Error) => {
          if (!/: exit 1\b/.test(e.message)) throw e;
          return false;
        },
      );
    // One answer proves a path open, so an open path gets a few tries (a loaded machine can
    // miss one deadline); one try is enough to see an isolated server answer.
    let answered = await probe();
    for (let i = 1; !answered && !isolated && i < PROBE_TRIES; i++) answered = await probe();
    if (answered === isolated) {
      throw new Error(
        `check ${v.name}: a request from ${OUTSIDER_IP}, outside its table, was ${answered ? 'answered (the server is not isolated)' : `dropped ${PROBE_TRIES} times (the path is not open)`}; ` +
          `node namespace: ${await this.diagnostics()}`,
      );
    }
  }

  /** What the node namespace holds, for an error that needs explaining. */
  private async diagnostics(): Promise<string> {
    const show = async (argv: string[]): Promise<string> =>
      `${argv.join(' ')}: ${await nsRun(this.topo.node, argv).then(
        (r) => r.stdout.trim().replace(/\s+/g, ' ').slice(0, 400),
        (e: Error) => e.message,
      )}`;
    return (
      await Promise.all(
        [
          ['ip', 'neigh'],
          ['nft', 'list', 'ruleset'],
          ['conntrack', '-C'],
          ['ip', '-s', 'link'],
        ].map(show),
      )
    ).join(' | ');
  }

  /** One client run: connections and rate in its measured seconds, and its CPU time in them. */
  async crr(
    seconds = this.opts.crrSeconds,
  ): Promise<{ conns: number; seconds: number; rate: number; cpuSeconds: number }> {
    const args = [
      'client',
      SERVER_IP,
      String(CRR_PORT),
      String(CRR_THREADS),
      String(seconds),
      this.cpu(CRR_CLIENT_CPU),
      String(CRR_WARMUP_MS),
    ];
    const { stdout } = await nsRun(this.topo.client, [CRR_BINARY, ...args], undefined, (seconds + 30) * 1000);
    const [conns, secs, rate, failed, cpuSeconds] = stdout.trim().split(/\s+/).map(Number);
    if (!(conns > 0)) throw new Error(`run crr client: no connection completed (${stdout.trim()})`);
    if (failed > 0)
      throw new Error(
        `run crr client: ${failed} of ${conns + failed} connections failed (the variant drops the allowed client?)`,
      );
    return { conns, seconds: secs, rate, cpuSeconds };
  }

  /** The variant's programs' time per connection over an extra connection-rate run with
   *  the kernel's run statistics on (not a counted run: the statistics cost time per run). */
  async programCost(addon: NativeAddon): Promise<ProgramCost | undefined> {
    if (this.progIds.length === 0) return undefined;
    const total = (): { runCnt: number; runTimeNs: number } =>
      this.progIds
        .map((id) => addon.progRunStats(id))
        .reduce((a, b) => ({ runCnt: a.runCnt + b.runCnt, runTimeNs: a.runTimeNs + b.runTimeNs }));
    const fd = addon.enableRunStats();
    try {
      const before = total();
      const r = await this.crr(PROGRAM_COST_SECONDS);
      const after = total();
      const nsPerConn = (after.runTimeNs - before.runTimeNs) / r.conns;
      return {
        connections: r.conns,
        runsPerConn: (after.runCnt - before.runCnt) / r.conns,
        nsPerConn,
        cpuShare: nsPerConn / ((os.cpus().length * r.seconds * 1e9) / r.conns),
      };
    } finally {
      addon.closeFd(fd);
    }
  }

  async iperf(): Promise<number> {
    const { stdout } = await nsRun(
      this.topo.client,
      ['iperf3', '-c', SERVER_IP, '-p', String(IPERF_PORT), '-t', String(this.opts.iperfSeconds), '-J'],
      undefined,
      (this.opts.iperfSeconds + 30) * 1000,
    );
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
  const programCost: Record<string, ProgramCost> = {};
  const crrPaired: Record<string, PairedCrr> = {};
  try {
    await bench.start();
    const schedule = Array.from({ length: opts.rounds }, (_, round) =>
      roundOrder(variants, round).map((variant) => ({ round, variant })),
    ).flat();
    for (const { round, variant } of schedule) {
      if (!usesNetfilter(variant)) await bench.checkNoRules(variant);
      await bench.setup(variant);
      try {
        if (round === 0) {
          await bench.checkEnforced(variant);
          const cost = opts.addon ? await bench.programCost(opts.addon) : undefined;
          if (cost) programCost[variant.name] = cost;
        }
        crr[variant.name].push((await bench.crr()).rate);
        tput[variant.name].push(await bench.iperf());
        await bench.checkConntrack(variant);
      } finally {
        await bench.teardown(variant);
      }
      opts.log(
        `net: round ${round + 1}/${opts.rounds} ${variant.name}: ${Math.round(crr[variant.name].at(-1)!)} conn/s, ` +
          `${tput[variant.name].at(-1)!.toFixed(2)} Gbit/s`,
      );
    }
    for (const variant of pairedVariants(variants)) {
      await bench.checkNoRules(variant);
      crrPaired[variant.name] = await bench.paired(variant);
      opts.log(
        `net: ${opts.pairs} pairs bare / ${variant.name}: median ratio ${crrPaired[variant.name].ratio.toFixed(3)}`,
      );
    }
  } finally {
    await bench.stop();
  }
  const med = (s: Record<string, number[]>): Record<string, number> =>
    Object.fromEntries(Object.entries(s).map(([k, v]) => [k, median(v)]));
  return { programCost, crrPaired, crr: med(crr), throughput: med(tput), samples: { crr, throughput: tput } };
}
