// Shape of bench/results/latest.json: what run.ts writes and report.ts renders.
import type { ScaleChildResult } from './scale-child';

export interface PktCase {
  /** e.g. "cidr_100k" (CIDR series) or "ident_10k" (identity series). */
  config: string;
  cidrs: number;
  identities: number;
  family: 4 | 6;
  flow: 'new' | 'established';
  /** Median ns per packet through nf_tc_egress. */
  ns: number;
  /** ns / the empty program's ns for the same family and flow kind. */
  ratioToEmpty: number;
  samples: number[];
}

export interface PktResults {
  repeat: number;
  /** Interleaved rounds; each case's ns is the median over them. */
  rounds: number;
  emptyNs: Record<string, number>; // "v4/new", "v4/established", ...
  cases: PktCase[];
}

export interface ControlResults {
  pods: number;
  namespaces: number;
  policies: number;
  nodes: number;
  localEndpoints: number;
  /** Median compile time; a lower bound when compileTimedOut. */
  compileMs: number;
  compileSamplesMs: number[];
  /** The first compile did not finish before the deadline. */
  compileTimedOut: boolean;
  /** Which cluster the change measurements ran on. */
  changesOn: string;
  /** Peak RSS of the compiling child process (MB). */
  peakRssMb: number;
  mapEntries: Record<string, number>;
  bpfMemoryBytes: number;
  podAdd: { updates: number; updatesSmallCluster: number; p50Ms: number; p99Ms: number; samplesMs: number[] };
  podRemove: { updates: number; p50Ms: number; p99Ms: number };
  policyChange: { updates: number; p50Ms: number; p99Ms: number };
}

export interface ApplyResults {
  /** Policies in the snapshot (the directory's, plus the system policy). */
  policies: number;
  files: number;
  bytes: number;
  errors: number;
  /** Files to map entries (load + compile + write), median of the rounds. */
  applyMs: number;
  applySamplesMs: number[];
  loadMs: number;
  compileMs: number;
  writeMs: number;
  /** After one file is edited: load (parse cache) + compile + write. */
  reloadMs: number;
  peakRssMb: number;
  mapEntries: Record<string, number>;
}

/** 100k pods / 10k namespaces / 20k policies end to end (bench/scale.ts). */
export interface ScaleResults {
  /** YAML bytes of the 100k-pod directory. */
  bytes: number;
  /** From the state directory's files (also the reload, pod-add and policy-change samples). */
  files: ScaleChildResult;
  /** From the Kubernetes source's list path (fake API server). */
  api: ScaleChildResult;
  /** The same directory at 10k pods (steady-state RSS, pod-add writes). */
  tenth: ScaleChildResult;
  podAddP99Ms: number;
  policyChangeP99Ms: number;
}

export interface LabResults {
  changes: number;
  policyFlip: { p50Ms: number; p99Ms: number; samplesMs: number[] };
  podIsolation?: { p50Ms: number; p99Ms: number; samplesMs: number[] };
}

export interface Percentiles {
  p50Ms: number;
  p99Ms: number;
  samplesMs: number[];
}

/** Sustained pod churn against a lab node's agent (bench/churn.ts). */
export interface ChurnResults {
  /** Pods added per second (and as many deleted: each lives 1 s). */
  rate: number;
  seconds: number;
  pods: number;
  /** Veth created -> endpoint entry with its table and its hooks' links pinned (a pod
   *  never enforced counts as the 10 s deadline). */
  enforce: { p50Ms: number; p99Ms: number; maxMs: number };
  /** Namespace deleted -> entry and link pins gone. */
  remove: { p50Ms: number; p99Ms: number; maxMs: number };
  notEnforced: number;
  notRemoved: number;
  /** Endpoint entries and link pins of interfaces gone, after the last pod's removal. */
  leakedEntries: number;
  leakedPins: number;
  /** The first few failures `ip -batch` reported (pods not created as planned). */
  ipErrors: string[];
  /** User + system CPU of the agent process over the churn window, % of one CPU. */
  agentCpuPercent: number;
  /** The agent's passes that changed something in the window ("reconciled" at info). */
  agentPasses: { count: number; p50Ms: number; p99Ms: number };
}

/** CNI chain overhead (bench/cni.ts): ptp + host-local with and without netfence-cni. */
export interface CniResults {
  /** Pod sandboxes ADDed (and DELeted) per chain. */
  pods: number;
  chainAdd: { without: Percentiles; with: Percentiles };
  /** Each plugin's own ADD in the chain with netfence-cni. */
  pluginAdd: { ptp: Percentiles; netfenceCni: Percentiles };
  /** `node -e 0` in the node namespace: the floor of a plugin written for node. */
  nodeStart: Percentiles;
  /** The executable (cni/netfence-cni.c). */
  binaryBytes: number;
  /** Its fallback, the node bundle. */
  bundleBytes: number;
}

/** One transparent-tunnel mode in the lab (bench/tunnel.ts). */
export interface TunnelModeResult {
  /** Median connections/s between two pods of one node (bench/crr.c). */
  connPerSec: number;
  connPerSecSamples: number[];
  /** DNS-like UDP queries through a same-node ClusterIP: lost and sent, over all rounds. */
  dnsLost: number;
  dnsQueries: number;
  /** Packets the gateway saw hairpinned, over all rounds (0 for off: the path is proven). */
  hairpinPackets: number;
}

export interface TunnelResults {
  rounds: number;
  crrSeconds: number;
  /** The mode src/model/config.ts picks when the config names none, at measurement time. */
  defaultMode: 'fwmark' | 'direct';
  off: TunnelModeResult;
  fwmark: TunnelModeResult;
  direct: TunnelModeResult;
}

/** A node without / with a policy, localDelivery on / off. */
export type LocalDeliveryCaseName = `${'nopolicy' | 'policy'}_${'on' | 'off'}`;

/** One case of bench/localdelivery.ts, measured in tight pairs against bare. */
export interface LocalDeliveryCase {
  /** conn/s of each pair, bare and the case. */
  pairs: { bare: number; variant: number }[];
  /** Median over the pairs of case / bare conn/s. */
  ratio: number;
  /** Node CPU time per connection (all CPUs, µs), medians over the pairs' runs. */
  cpuUsPerConn: { bare: number; variant: number };
  /** Median over the pairs of case / bare CPU per connection. */
  cpuRatio: number;
}

/** localDelivery on / off, on a node without policies and with one (bench/localdelivery.ts). */
export interface LocalDeliveryResults {
  pairs: number;
  pairSeconds: number;
  /** Prefixes in the isolating policy's table. */
  policyCidrs: number;
  /** localDelivery's default in src/model/config.ts at measurement time. */
  defaultOn: boolean;
  cases: Record<LocalDeliveryCaseName, LocalDeliveryCase>;
}

/** The kernel's run statistics (BPF_ENABLE_STATS) of a variant's programs over one extra
 *  connection-rate run in the first round (not one of the counted ones: stats cost time). */
export interface ProgramCost {
  connections: number;
  /** Program runs per connection (packets x hooks). */
  runsPerConn: number;
  /** Program time per connection, every hook summed (ns). */
  nsPerConn: number;
  /** nsPerConn / the CPU time a connection took in that run (CPUs x seconds / connections). */
  cpuShare: number;
}

/** A variant's connection rate against bare measured in tight pairs: one object set up
 *  once, its programs attached and detached between short runs (A B B A A B ...), so
 *  load from outside the benchmark that lasts longer than a pair cancels out. */
export interface PairedCrr {
  /** conn/s of each pair, bare and the variant. */
  pairs: { bare: number; variant: number }[];
  /** Median over the pairs of variant / bare. */
  ratio: number;
}

export interface TargetResult {
  name: string;
  description: string;
  value: number | null;
  limit: number;
  op: '<=' | '>=';
  unit: string;
  /** null = not measured in this run. */
  pass: boolean | null;
}

export interface BenchResults {
  version: 1;
  date: string;
  command: string;
  quick: boolean;
  rounds: number;
  machine: { kernel: string; cpus: number; node: string };
  /** Connection rate medians (connections/s) per variant: bare, netfence_<n>, iptables_<n>, ipset_<n>. */
  crr: Record<string, number>;
  /** Throughput medians (Gbit/s) per variant. */
  throughput: Record<string, number>;
  samples: { crr: Record<string, number[]>; throughput: Record<string, number[]> };
  /** Variants with tc programs: what their programs cost per connection on the real path. */
  programCost?: Record<string, ProgramCost>;
  /** Tight bare / variant pairs (PairedCrr) of the variants the connection-rate target reads. */
  crrPaired?: Record<string, PairedCrr>;
  pkt?: PktResults;
  control?: ControlResults;
  apply?: ApplyResults;
  scale?: ScaleResults;
  lab?: LabResults;
  tunnel?: TunnelResults;
  localDelivery?: LocalDeliveryResults;
  cni?: CniResults;
  churn?: ChurnResults;
  /** Benchmark -> why it did not run (or ran partly). */
  skipped: Record<string, string>;
  /** Part -> when its figures were measured: a `--only` run keeps the other parts of the
   *  previous results, so one report can mix runs (it names each part's date). */
  partDates?: Record<string, string>;
  targets: TargetResult[];
  durationS: number;
}
