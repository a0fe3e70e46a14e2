// bench/REPORT.md and bench/chart.svg from a BenchResults: targets, tables, and a
// plain-SVG chart of throughput and connection rate against rule count.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ScaleChildResult } from './scale-child';
import type { BenchResults, PktCase, ScaleResults, TargetResult } from './types';
import { median, percentile, ratio } from './stats';
import { tunnelDefaultTarget, tunnelRows } from './tunnel-report';
import { localDeliveryDefaultTarget, localDeliveryRows } from './localdelivery-report';

/** 100 -> "100", 1000 -> "1k", 100000 -> "100k". */
export function countLabel(n: number): string {
  if (n >= 1000 && n % 1000 === 0) return `${n / 1000}k`;
  return String(n);
}

/** Rule counts of the network benchmark, in chart order. */
export const NET_RULE_COUNTS = [0, 100, 1000, 10000] as const;

function pktNs(r: BenchResults, config: string, flow: PktCase['flow'], family: 4 | 6): number | null {
  const c = r.pkt?.cases.find((x) => x.config === config && x.flow === flow && x.family === family);
  return c ? c.ns : null;
}

/** Worst (largest) of the per-family ratios a/b, or null when a figure is missing. */
function worstPktRatio(r: BenchResults, flow: PktCase['flow'], a: string, b: string): number | null {
  const vals: number[] = [];
  for (const fam of [4, 6] as const) {
    const x = pktNs(r, a, flow, fam);
    const y = pktNs(r, b, flow, fam);
    if (x === null || y === null) return null;
    vals.push(ratio(x, y));
  }
  return Math.max(...vals);
}

/** Worst (largest) per-packet ns of a flow kind over the CIDR series (0 to 100k) and both families. */
function worstPktNs(r: BenchResults, flow: PktCase['flow']): number | null {
  const cases = r.pkt?.cases.filter((c) => c.flow === flow && c.config.startsWith('cidr_')) ?? [];
  return cases.length ? Math.max(...cases.map((c) => c.ns)) : null;
}

/** The empty tc program on all four hooks netfence attaches to: the floor of program time per connection. */
export const PROGRAM_FLOOR_VARIANT = 'emptyprog_4hooks';

/** Program time per connection of a variant / the floor's, both from the same run's kernel statistics. */
function programCostVsFloor(r: BenchResults, v: string): number | null {
  const x = r.programCost?.[v];
  const floor = r.programCost?.[PROGRAM_FLOOR_VARIANT];
  return x && floor ? ratio(x.nsPerConn, floor.nsPerConn) : null;
}

function crrRatio(r: BenchResults, a: string, b: string): number | null {
  const x = r.crr[a];
  const y = r.crr[b];
  return x === undefined || y === undefined ? null : ratio(x, y);
}

/** Variant / bare connection rate: the median of the tight pairs where measured (PairedCrr),
 *  else the ratio of the round medians. */
function crrVsBare(r: BenchResults, v: string): { value: number | null; how: string } {
  const p = r.crrPaired?.[v];
  return p
    ? { value: p.ratio, how: `median of ${p.pairs.length} tight pairs` }
    : { value: crrRatio(r, v, 'bare'), how: 'ratio of round medians' };
}

function target(t: Omit<TargetResult, 'pass'>): TargetResult {
  const pass =
    t.value === null || Number.isNaN(t.value) ? null : t.op === '<=' ? t.value <= t.limit : t.value >= t.limit;
  return { ...t, pass };
}

export function evaluateTargets(r: BenchResults): TargetResult[] {
  const c = r.control;
  const a = r.apply;
  const crr10k = crrVsBare(r, 'netfence_10k');
  return [
    target({
      name: 'crr_10k_vs_bare',
      description: `connection rate, netfence 10k rules / bare (${crr10k.how})`,
      value: crr10k.value,
      op: '>=',
      limit: 0.98,
      unit: 'x',
    }),
    target({
      name: 'crr_10k_vs_ipset',
      description: 'connection rate, netfence 10k rules / iptables+ipset 10k rules',
      value: crrRatio(r, 'netfence_10k', 'ipset_10k'),
      op: '>=',
      limit: 1.2,
      unit: 'x',
    }),
    target({
      name: 'pkt_established_100k_vs_0',
      description: 'established-flow per-packet cost, 100k CIDRs / 0 (worst of v4, v6)',
      value: worstPktRatio(r, 'established', 'cidr_100k', 'cidr_0'),
      op: '<=',
      limit: 1.1,
      unit: 'x',
    }),
    target({
      name: 'pkt_new_100k_vs_100',
      description: 'new-flow per-packet cost, 100k CIDRs / 100 CIDRs (worst of v4, v6)',
      value: worstPktRatio(r, 'new', 'cidr_100k', 'cidr_100'),
      op: '<=',
      limit: 3,
      unit: 'x',
    }),
    target({
      name: 'pkt_established_ns',
      description: 'established-flow per-packet cost, worst of 0 to 100k CIDRs, v4 and v6',
      value: worstPktNs(r, 'established'),
      op: '<=',
      limit: 100,
      unit: 'ns',
    }),
    target({
      name: 'pkt_new_ns',
      description: 'new-flow per-packet cost, worst of 0 to 100k CIDRs, v4 and v6',
      value: worstPktNs(r, 'new'),
      op: '<=',
      limit: 250,
      unit: 'ns',
    }),
    target({
      name: 'program_time_10k_vs_floor',
      description: `program time per connection, netfence 10k rules / ${PROGRAM_FLOOR_VARIANT} (kernel run statistics, same run)`,
      value: programCostVsFloor(r, 'netfence_10k'),
      op: '<=',
      limit: 2,
      unit: 'x',
    }),
    target({
      name: 'compile_time',
      description: `compile 10k pods / 1k namespaces / 2k policies${c?.compileTimedOut ? ' (lower bound: stopped at the deadline)' : ''}`,
      value: c ? c.compileMs / 1000 : null,
      op: '<=',
      limit: 5,
      unit: 's',
    }),
    target({
      name: 'compile_rss',
      description: 'peak RSS of that compile',
      value: c ? c.peakRssMb : null,
      op: '<=',
      limit: 300,
      unit: 'MB',
    }),
    target({
      name: 'pod_add_updates_constant',
      description: 'map updates for one pod added, 10k-pod cluster minus 1k-pod cluster (0 = O(1))',
      value: c && c.changesOn === `${c.pods} pods` ? c.podAdd.updates - c.podAdd.updatesSmallCluster : null,
      op: '<=',
      limit: 0,
      unit: 'updates',
    }),
    target({
      name: 'pod_add_p99',
      description: `one pod added: recompile + write to the kernel maps, p99 (on ${c?.changesOn ?? 'the 10k-pod cluster'})`,
      value: c ? c.podAdd.p99Ms : null,
      op: '<=',
      limit: 50,
      unit: 'ms',
    }),
    target({
      name: 'lab_policy_enforced_p99',
      description: 'lab: policy file change -> probe verdict flipped, p99',
      value: r.lab ? r.lab.policyFlip.p99Ms : null,
      op: '<=',
      limit: 200,
      unit: 'ms',
    }),
    target({
      name: 'apply_20k_policies_time',
      description: `a ${a ? fmt(a.policies - 1, 0) : '20k'}-policy state directory (${a ? fmt(a.bytes / 1e6, 1) : 'n/a'} MB) from files to map entries`,
      value: a ? a.applyMs / 1000 : null,
      op: '<=',
      limit: APPLY_LIMIT_S,
      unit: 's',
    }),
    target({
      name: 'apply_20k_policies_rss',
      description: 'peak RSS of that apply',
      value: a ? a.peakRssMb : null,
      op: '<=',
      limit: APPLY_LIMIT_MB,
      unit: 'MB',
    }),
    ...scaleTargets(r.scale),
    tunnelDefaultTarget(r.tunnel),
    localDeliveryDefaultTarget(r.localDelivery),
    target({
      name: 'churn_enforced_p99',
      description: `pod churn, ${r.churn ? `${r.churn.rate} adds + ${r.churn.rate} deletes/s for ${fmt(r.churn.seconds, 0)} s` : '100 adds + 100 deletes/s for 60 s'}: veth appears -> pod enforced, p99 (agent CPU ${r.churn ? fmt(r.churn.agentCpuPercent, 0) : 'n/a'} % of one CPU)`,
      value: r.churn ? r.churn.enforce.p99Ms : null,
      op: '<=',
      limit: 50,
      unit: 'ms',
    }),
    target({
      name: 'cni_plugin_vs_interface_plugin',
      description: 'netfence-cni ADD / the interface plugin (ptp) ADD in the same chain, p50',
      value: r.cni ? r.cni.pluginAdd.netfenceCni.p50Ms / r.cni.pluginAdd.ptp.p50Ms : null,
      op: '<=',
      limit: 1,
      unit: 'x',
    }),
  ];
}

const SCALE_LIMIT_S = 5;
const SCALE_LIMIT_MB = 1024;

function scaleTargets(x: ScaleResults | undefined): TargetResult[] {
  const scale = '100k pods / 10k namespaces / 20k policies';
  return [
    target({
      name: 'scale_files_time',
      description: `${scale}, state directory files to map entries`,
      value: x ? x.files.applyMs / 1000 : null,
      op: '<=',
      limit: SCALE_LIMIT_S,
      unit: 's',
    }),
    target({
      name: 'scale_files_rss',
      description: 'peak RSS of that apply',
      value: x ? x.files.peakRssMb : null,
      op: '<=',
      limit: SCALE_LIMIT_MB,
      unit: 'MB',
    }),
    target({
      name: 'scale_api_time',
      description: `${scale}, Kubernetes source (list from the API server) to map entries`,
      value: x ? x.api.applyMs / 1000 : null,
      op: '<=',
      limit: SCALE_LIMIT_S,
      unit: 's',
    }),
    target({
      name: 'scale_api_rss',
      description: 'peak RSS of that apply',
      value: x ? x.api.peakRssMb : null,
      op: '<=',
      limit: SCALE_LIMIT_MB,
      unit: 'MB',
    }),
    target({
      name: 'scale_reload_parses',
      description: 'one file of that directory edited: files parsed again on reload',
      value: x?.files.reload ? x.files.reload.filesParsed : null,
      op: '<=',
      limit: 1,
      unit: 'files',
    }),
    target({
      name: 'steady_rss_10k',
      description: 'agent steady-state RSS at 10k pods (applied, reloaded, collected)',
      value: x?.tenth.steadyRssMb ?? null,
      op: '<=',
      limit: 150,
      unit: 'MB',
    }),
    target({
      name: 'scale_pod_add_p99',
      description: 'one pod added at 100k pods: recompile + write to the kernel maps, p99',
      value: x ? x.podAddP99Ms : null,
      op: '<=',
      limit: 50,
      unit: 'ms',
    }),
    target({
      name: 'scale_pod_add_updates_constant',
      description: 'map writes for one pod added, 100k-pod directory minus 10k-pod directory (0 = O(1))',
      value: x?.files.podAdd && x.tenth.podAdd ? x.files.podAdd.updates - x.tenth.podAdd.updates : null,
      op: '<=',
      limit: 0,
      unit: 'writes',
    }),
    target({
      name: 'scale_policy_change_p99',
      description: `a policy change touching ${x?.files.policyChangePods ? fmt(x.files.policyChangePods, 0) : '1k'} pods at 100k pods: recompile + write, p99`,
      value: x ? x.policyChangeP99Ms : null,
      op: '<=',
      limit: 200,
      unit: 'ms',
    }),
  ];
}

function scaleTable(r: BenchResults): string[] {
  const x = r.scale;
  if (!x) return ['Not run.'];
  const f = x.files;
  const row = (what: string, c: ScaleChildResult): string =>
    `| ${what} | ${fmt(c.applyMs / 1000)} s (${fmt(c.loadMs, 0)} / ${fmt(c.compileMs, 0)} / ${fmt(c.writeMs, 0)} ms) | ${fmt(c.peakRssMb, 0)} MB |`;
  return [
    `State directory: ${fmt(f.pods, 0)} pods, ${fmt(f.namespaces, 0)} namespaces, ${fmt(f.policies - 1, 0)} policies in ` +
      `${f.reload?.files ?? 'n/a'} files (${fmt(x.bytes / 1e6, 1)} MB of YAML), ${f.errors} errors; ${f.localEndpoints} endpoints ` +
      `on the compiled node. The same objects from the fake API server: ${fmt(x.api.pods, 0)} pods, ${x.api.errors} errors.`,
    '',
    '| from | to map entries (load / compile / write) | peak RSS |',
    '|---|---:|---:|',
    row('state directory, 100k pods', f),
    row('Kubernetes source, 100k pods', x.api),
    row('state directory, 10k pods', x.tenth),
    '',
    '| measure | value |',
    '|---|---:|',
    `| one file edited: reload + compile + write (files parsed again) | ${fmt(f.reload?.ms ?? NaN, 0)} ms (${f.reload?.filesParsed ?? 'n/a'}) |`,
    `| steady-state RSS at 10k / 100k pods | ${fmt(x.tenth.steadyRssMb ?? NaN, 0)} / ${fmt(f.steadyRssMb ?? NaN, 0)} MB |`,
    `| one pod added: map writes at 10k / 100k pods | ${x.tenth.podAdd?.updates ?? 'n/a'} / ${f.podAdd?.updates ?? 'n/a'} |`,
    `| one pod added at 100k pods: p50 / p99 (${f.podAdd?.samplesMs.length ?? 0} samples) | ${fmt(percentile(f.podAdd?.samplesMs ?? [NaN], 50))} / ${fmt(x.podAddP99Ms)} ms |`,
    `| policy change touching ${f.policyChangePods ?? 'n/a'} pods: map writes | ${f.policyChange?.updates ?? 'n/a'} |`,
    `| policy change: p50 / p99 | ${fmt(percentile(f.policyChange?.samplesMs ?? [NaN], 50))} / ${fmt(x.policyChangeP99Ms)} ms |`,
  ];
}

const APPLY_LIMIT_S = 3;
const APPLY_LIMIT_MB = 300;

function applyTable(r: BenchResults): string[] {
  const a = r.apply;
  if (!a) return ['Not run.'];
  const ms = a.applyMs;
  return [
    `State directory: ${fmt(a.policies - 1, 0)} NetworkPolicies in ${a.files} files (${fmt(a.bytes / 1e6, 1)} MB of YAML), ` +
      `${a.errors} errors; compiled for one node.`,
    '',
    '| measure | value | ratio to target |',
    '|---|---:|---:|',
    `| files to map entries (median of ${a.applySamplesMs.length}) | ${fmt(ms / 1000)} s | ${fmt(ms / 1000 / APPLY_LIMIT_S)} x ${APPLY_LIMIT_S} s |`,
    `| peak RSS | ${fmt(a.peakRssMb, 0)} MB | ${fmt(a.peakRssMb / APPLY_LIMIT_MB)} x ${APPLY_LIMIT_MB} MB |`,
    `| load (settings, hash, parse, snapshot) / compile / write to the kernel maps | ${fmt(a.loadMs, 0)} / ${fmt(a.compileMs, 0)} / ${fmt(a.writeMs, 0)} ms | |`,
    `| one file edited: reload (parse cache) + compile + write | ${fmt(a.reloadMs, 0)} ms | |`,
    ...Object.entries(a.mapEntries).map(([m, n]) => `| entries in ${m} | ${fmt(n, 0)} | |`),
  ];
}

function fmt(x: number | null | undefined, digits = 2): string {
  if (x === null || x === undefined || Number.isNaN(x)) return 'n/a';
  if (Math.abs(x) >= 1000) return Math.round(x).toLocaleString('en-US');
  return x.toFixed(digits);
}

function verdict(p: boolean | null): string {
  return p === null ? 'NOT RUN' : p ? 'PASS' : 'FAIL';
}

/** Network variants in display order: bare, then each engine by rule count. */
export function netVariantOrder(r: BenchResults): string[] {
  const names = new Set([...Object.keys(r.crr), ...Object.keys(r.throughput)]);
  const order = ['bare', 'emptyprog_2hooks', 'emptyprog_4hooks'];
  for (const engine of ['netfence', 'iptables', 'ipset']) {
    for (const n of NET_RULE_COUNTS) order.push(`${engine}_${countLabel(n)}`);
  }
  return order.filter((n) => names.has(n));
}

/** Lowest and highest per-round connection-rate ratio to the same round's bare: the noise. */
function crrRoundRange(r: BenchResults, v: string): string {
  const xs = r.samples.crr[v];
  const base = r.samples.crr.bare;
  if (!xs?.length || xs.length !== base?.length) return 'n/a';
  const ratios = xs.map((x, i) => ratio(x, base[i]));
  return `${fmt(Math.min(...ratios))}-${fmt(Math.max(...ratios))}`;
}

function netTable(r: BenchResults): string[] {
  const lines = [
    '| variant | conn/s (median) | ratio to bare | per-round ratio to bare (min-max) | Gbit/s (median) | ratio to bare |',
    '|---|---:|---:|---:|---:|---:|',
  ];
  for (const v of netVariantOrder(r)) {
    lines.push(
      `| ${v} | ${fmt(r.crr[v], 0)} | ${fmt(ratio(r.crr[v] ?? NaN, r.crr.bare ?? NaN))} | ${crrRoundRange(r, v)} | ` +
        `${fmt(r.throughput[v])} | ${fmt(ratio(r.throughput[v] ?? NaN, r.throughput.bare ?? NaN))} |`,
    );
  }
  return lines;
}

/** A table of the net variants that have an entry in `data`, in display order. */
function perVariantTable<T>(
  r: BenchResults,
  data: Record<string, T> | undefined,
  header: string[],
  cells: (d: T) => string[],
): string[] {
  const rows = netVariantOrder(r).filter((v) => data?.[v]);
  if (!data || rows.length === 0) return ['Not measured.'];
  return [
    `| variant | ${header.join(' | ')} |`,
    `|---|${header.map(() => '---:').join('|')}|`,
    ...rows.map((v) => `| ${v} | ${cells(data[v]).join(' | ')} |`),
  ];
}

function pairedTable(r: BenchResults): string[] {
  const header = [
    'pairs',
    'ratio to bare (median of pairs)',
    'per-pair ratio (min-max)',
    'bare conn/s (median)',
    'variant conn/s (median)',
  ];
  return perVariantTable(r, r.crrPaired, header, (p) => {
    const ratios = p.pairs.map((x) => x.variant / x.bare);
    const med = (k: 'bare' | 'variant'): number => median(p.pairs.map((x) => x[k]));
    return [
      String(p.pairs.length),
      fmt(p.ratio, 3),
      `${fmt(Math.min(...ratios), 3)}-${fmt(Math.max(...ratios), 3)}`,
      fmt(med('bare'), 0),
      fmt(med('variant'), 0),
    ];
  });
}

function programCostTable(r: BenchResults): string[] {
  const header = ['program runs per connection', 'program time per connection', "share of the connection's CPU time"];
  return perVariantTable(r, r.programCost, header, (c) => [
    fmt(c.runsPerConn, 1),
    `${fmt(c.nsPerConn, 0)} ns`,
    `${fmt(c.cpuShare * 100, 1)} %`,
  ]);
}

function pktTable(r: BenchResults): string[] {
  const p = r.pkt;
  if (!p) return ['Not run.'];
  const configs = [...new Set(p.cases.map((c) => c.config))];
  const lines = [
    `Empty tc program: ${Object.entries(p.emptyNs)
      .map(([k, v]) => `${k} ${fmt(v, 1)} ns`)
      .join(', ')}.`,
    '',
    '| config | CIDRs | identities | v4 new ns (x empty) | v4 est. ns (x empty) | v6 new ns (x empty) | v6 est. ns (x empty) |',
    '|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const cfg of configs) {
    const cs = p.cases.filter((c) => c.config === cfg);
    const cell = (fam: 4 | 6, flow: PktCase['flow']): string => {
      const c = cs.find((x) => x.family === fam && x.flow === flow);
      return c ? `${fmt(c.ns, 1)} (${fmt(c.ratioToEmpty)})` : 'n/a';
    };
    lines.push(
      `| ${cfg} | ${countLabel(cs[0].cidrs)} | ${countLabel(cs[0].identities)} | ${cell(4, 'new')} | ` +
        `${cell(4, 'established')} | ${cell(6, 'new')} | ${cell(6, 'established')} |`,
    );
  }
  return lines;
}

function controlTable(r: BenchResults): string[] {
  const c = r.control;
  if (!c) return ['Not run.'];
  return [
    `Synthetic cluster: ${c.pods} pods, ${c.namespaces} namespaces, ${c.policies} policies, ${c.nodes} nodes ` +
      `(${c.localEndpoints} endpoints on the compiled node).`,
    '',
    '| measure | value |',
    '|---|---:|',
    `| compile time (median) | ${c.compileTimedOut ? '> ' : ''}${fmt(c.compileMs, 0)} ms${c.compileTimedOut ? ' (stopped at the deadline)' : ''} |`,
    `| peak RSS of the compiling process | ${fmt(c.peakRssMb, 0)} MB |`,
    `| BPF map memory (key+value x entries) | ${fmt(c.bpfMemoryBytes / 1048576)} MiB |`,
    ...Object.entries(c.mapEntries).map(([m, n]) => `| entries in ${m} | ${fmt(n, 0)} |`),
    `| changes measured on | ${c.changesOn} (${c.podAdd.samplesMs.length} of each kind) |`,
    `| one pod added: map updates (1k-pod cluster: ${c.podAdd.updatesSmallCluster}) | ${c.podAdd.updates} |`,
    `| one pod added: recompile + write to the kernel maps, p50 / p99 | ${fmt(c.podAdd.p50Ms)} / ${fmt(c.podAdd.p99Ms)} ms |`,
    `| one pod removed: map updates | ${c.podRemove.updates} |`,
    `| one pod removed: p50 / p99 | ${fmt(c.podRemove.p50Ms)} / ${fmt(c.podRemove.p99Ms)} ms |`,
    `| one policy changed: map updates | ${c.policyChange.updates} |`,
    `| one policy changed: p50 / p99 | ${fmt(c.policyChange.p50Ms)} / ${fmt(c.policyChange.p99Ms)} ms |`,
  ];
}

function labTable(r: BenchResults): string[] {
  const l = r.lab;
  if (!l) return ['Not run.'];
  const lines = [
    '| measure | p50 | p99 | samples |',
    '|---|---:|---:|---:|',
    `| policy file change -> probe verdict flipped | ${fmt(l.policyFlip.p50Ms)} ms | ${fmt(l.policyFlip.p99Ms)} ms | ${l.policyFlip.samplesMs.length} |`,
  ];
  if (l.podIsolation) {
    lines.push(
      `| pod veth appears -> pod isolated | ${fmt(l.podIsolation.p50Ms)} ms | ${fmt(l.podIsolation.p99Ms)} ms | ${l.podIsolation.samplesMs.length} |`,
    );
  }
  return lines;
}

function churnTable(r: BenchResults): string[] {
  const c = r.churn;
  if (!c) return ['Not run.'];
  const ms = (p: { p50Ms: number; p99Ms: number; maxMs: number }): string =>
    `${fmt(p.p50Ms, 1)} ms | ${fmt(p.p99Ms, 1)} ms | ${fmt(p.maxMs, 1)} ms`;
  return [
    '| measure | p50 | p99 | max |',
    '|---|---:|---:|---:|',
    `| veth appears -> pod enforced (${c.pods} pods; never enforced: ${c.notEnforced}, counted at 10 s) | ${ms(c.enforce)} |`,
    `| veth deleted -> entry and pins gone, of pods enforced (never removed: ${c.notRemoved}) | ${ms(c.remove)} |`,
    `| agent passes that changed something (${c.agentPasses.count}) | ${fmt(c.agentPasses.p50Ms, 1)} ms | ${fmt(c.agentPasses.p99Ms, 1)} ms | |`,
    '',
    `Agent CPU (user + sys) over the window: ${fmt(c.agentCpuPercent, 1)} % of one CPU. Left after the last pod: ` +
      `${c.leakedEntries} endpoint entries and ${c.leakedPins} link pins of gone interfaces.` +
      (c.ipErrors.length ? ` ip -batch failures (first ${c.ipErrors.length}): ${c.ipErrors.join('; ')}` : ''),
  ];
}

function cniTable(r: BenchResults): string[] {
  const c = r.cni;
  if (!c) return ['Not run.'];
  const row = (what: string, p: { p50Ms: number; p99Ms: number }) =>
    `| ${what} | ${fmt(p.p50Ms, 1)} ms | ${fmt(p.p99Ms, 1)} ms |`;
  return [
    `${c.pods} pod sandboxes per chain; netfence-cni is a ${fmt(c.binaryBytes / 1024, 1)} KiB executable (its fallback, the node bundle, ${fmt(c.bundleBytes / 1024, 1)} KiB).`,
    '',
    '| measure | p50 | p99 |',
    '|---|---:|---:|',
    row('chain ADD, ptp + host-local', c.chainAdd.without),
    row('chain ADD, ptp + host-local + netfence-cni', c.chainAdd.with),
    row('ptp ADD (host-local included)', c.pluginAdd.ptp),
    row('netfence-cni ADD', c.pluginAdd.netfenceCni),
    row('node -e 0 (floor of a node plugin)', c.nodeStart),
  ];
}

function tunnelTable(r: BenchResults): string[] {
  if (!r.tunnel) return ['Not run.'];
  const [head, ...rows] = tunnelRows(r.tunnel);
  return [`| ${head.join(' | ')} |`, '|---|---:|---:|---:|', ...rows.map((row) => `| ${row.join(' | ')} |`)];
}

function localDeliveryTable(r: BenchResults): string[] {
  if (!r.localDelivery) return ['Not run.'];
  const [head, ...rows] = localDeliveryRows(r.localDelivery);
  return [`| ${head.join(' | ')} |`, '|---|---:|---:|---:|---:|', ...rows.map((row) => `| ${row.join(' | ')} |`)];
}

/** A report mixing runs (`--only`) says when each part was measured. */
function partDatesNote(r: BenchResults): string[] {
  const dates = Object.entries(r.partDates ?? {});
  if (dates.every(([, d]) => d === r.date)) return [];
  return [
    `Parts kept from earlier runs (\`--only\` runs the named parts only): ${dates.map(([p, d]) => `${p} ${d}`).join(', ')}.`,
    '',
  ];
}

export function renderReport(r: BenchResults): string {
  const targets = r.targets.length ? r.targets : evaluateTargets(r);
  const out = [
    '# netfence benchmarks',
    '',
    `Generated by \`${r.command}\` on ${r.date} (${r.quick ? 'quick' : 'full'} run, ${r.rounds} interleaved rounds, ` +
      `${fmt(r.durationS, 0)} s). Machine: kernel ${r.machine.kernel}, ${r.machine.cpus} CPUs, Node ${r.machine.node}.`,
    '',
    ...partDatesNote(r),
    'Every comparison is measured in one run, interleaved (A B C A B C ...), and reported as the median of the ' +
      'rounds and as a ratio to its baseline. Figures from a 2-core VM are noisy; compare ratios, not absolutes.',
    '',
    'Build and run: `make -C bpf && make -C bench && npm run build:native && npm run build:ts && make -C cni && ' +
      `${r.command}\` (as root).`,
    '',
    '## Targets',
    '',
    '| target | value | limit | result |',
    '|---|---:|---:|---|',
    // ratios with three decimals, so a value that rounds to its limit shows on which side it is
    ...targets.map(
      (t) =>
        `| ${t.description} | ${fmt(t.value, t.unit === 'x' ? 3 : 2)} ${t.unit} | ${t.op} ${t.limit} ${t.unit} | ${verdict(t.pass)} |`,
    ),
    '',
    '## Connection rate and throughput',
    '',
    'Two pod namespaces joined through a node namespace by veths (routing in the node namespace). ' +
      'Connection rate: bench/crr.c, 4 client threads pinned to CPU 0 and 4 server threads pinned to CPU 1, each ' +
      'looping connect, 64-byte request, 64-byte response, close; the client closes with RST (SO_LINGER 0), so no ' +
      'TIME_WAIT socket outlives a measurement and no variant inherits ephemeral ports an earlier one left occupied. ' +
      "Connections are counted for 2 s (quick run) or 5 s after a 0.5 s warm-up. The client's CPU also runs the " +
      "softirq path of every packet it sends (the SYN through both hooks, the server's SYN-ACK), so it saturates and " +
      'conn/s is the inverse of the per-connection CPU cost. Throughput: iperf3, one TCP stream, 1 s (quick) or 3 s. ' +
      'Each round measures every variant once, set up right before its measurement and removed right after; ' +
      'bare, netfence_10k and ipset_10k run back to back, and odd rounds run the order backwards. The node ' +
      "namespace's netfilter state is checked around every measurement: bare and netfence run with an empty " +
      "ruleset and must leave the node's conntrack table empty (no conntrack hook left registered by an iptables " +
      'variant), iptables and ipset must have tracked the connections. In the first round a request from a second ' +
      'client address, outside every table, must be dropped by each variant with rules and answered by bare and ' +
      'netfence_0. Variants: bare (no program, no netfilter rules); emptyprog_2hooks and emptyprog_4hooks (bench/empty.bpf.c, ' +
      "a tc program that returns at once, on both hooks of the server's veth, or of both veths: the floor any tc classifier pays " +
      'there, for the dispatch and the cache lines of a program run); netfence_N (the server pod isolated by a table of N ' +
      'CIDR prefixes, the client matching the last one; nf_tc_ingress/nf_tc_egress on the hooks the agent gives each endpoint ' +
      "(src/compile/hooks.ts): both hooks of both veths, which local delivery needs; the client's tc ingress enforces the server's ingress table and hands the packet to the server pod with bpf_redirect_peer, skipping the node's stack); iptables_N (conntrack ESTABLISHED,RELATED accept first, " +
      'then one FORWARD rule per CIDR, the client matching the last one); ipset_N (one FORWARD rule per policy ' +
      "rule matching a hash:net set). The per-round column divides each round's figure by the same round's bare: " +
      'its spread is the noise from load outside the benchmark (other processes share the 2 CPUs).',
    '',
    '![connection rate and throughput against rule count](chart.svg)',
    '',
    ...netTable(r),
    '',
    'Tight pairs: after the rounds, emptyprog_2hooks and the largest netfence variant are each set up once (the same ' +
      'object, maps and hooks as in the rounds, kept open by bench/nf-helper.ts serve) and measured against bare in ' +
      'pairs of short connection-rate runs (1 s quick, 2 s full, each after the 0.5 s warm-up), the programs attached ' +
      'for one run and detached for the other within milliseconds, the order alternating pair by pair (A B B A A B ...). ' +
      'Load from outside the benchmark that lasts longer than a pair (the rounds above show it moving whole rounds by ' +
      "30 %) divides out of each pair's ratio; the connection-rate target reads the median of these ratios.",
    '',
    ...pairedTable(r),
    '',
    'What the programs themselves cost on this path: in the first round each variant with programs makes one more ' +
      "connection-rate run (2 s, not counted above) with the kernel's run statistics on (BPF_ENABLE_STATS: the " +
      'kernel times every program run, which itself costs a clock read per run), and the time of every run on every ' +
      'hook is divided by the connections made; the share relates it to the CPU time a connection took in that run ' +
      '(CPUs x seconds / connections). The hook dispatch around a run is not in it; the emptyprog variants measure that.',
    '',
    ...programCostTable(r),
    '',
    '## Per-packet cost (BPF_PROG_TEST_RUN)',
    '',
    'nf_tc_egress (traffic to a pod, its ingress policy) run by the kernel on one packet. Established: the ' +
      'same allowed packet repeated, so every run after the first is a conntrack hit. New: a packet to a port no ' +
      'allow rule covers, repeated; it is denied, so every run is a conntrack miss plus the full lookup (identity, ' +
      'CIDR trie, ports, rules): the new-flow path without the conntrack insert. N CIDRs = N prefixes spread over the rules of ' +
      'one table, the probe source matching the longest one. Ratios are to an empty tc program (bench/empty.bpf.c) ' +
      `measured the same way. Each figure is the median of ${r.pkt?.rounds ?? 'n/a'} interleaved rounds: a sample takes ` +
      'milliseconds, so rounds are cheap here and outvote the seconds-long slow spells of the host.',
    '',
    ...pktTable(r),
    '',
    '## Control plane',
    '',
    'A change is timed as the agent enforces it: the long-lived Compiler recompiles the changed snapshot and a Reconciler pass writes the difference into the maps of the real netfence object loaded in the kernel (programs are not attached: the synthetic endpoints have no interfaces; a new veth is timed in the lab part).',
    '',
    ...controlTable(r),
    '',
    '## Applying a large state directory',
    '',
    "An agent start's worth of work, each round in a fresh process, as `netfence agent --state` does it: the settings " +
      'are read, the directory source hashes and loads the YAML (parse and snapshot), the compiler compiles it for one ' +
      'node, and a Reconciler pass writes the entries into the maps of the real netfence object loaded in the kernel ' +
      '(bench/apply.ts; the directory is generated by bench/statedir.ts).',
    '',
    ...applyTable(r),
    '',
    '## Scale: 100k pods',
    '',
    'As above, each source in a fresh process, for a directory of 10k namespaces with 10 pods and 2 NetworkPolicies ' +
      'each, 1000 nodes and ten admin ClusterNetworkPolicies whose subjects are 1 in 100 pods (bench/statedir.ts), ' +
      'compiled for one node: from its files, and from the Kubernetes source listing the same objects from the fake ' +
      'API server (test/helpers/fake-apiserver-main.ts, in its own process) through the client. In the files process, ' +
      'after the apply: one file edited and reloaded, the RSS after a full collection (what the agent holds: parse ' +
      'cache, snapshot, compiler, reconciler), then pods added (a replica of a local pod) and changes to a port of ' +
      'cnp-0, each from the applied base and timed as the agent enforces it (bench/scale.ts, bench/scale-child.ts).',
    '',
    ...scaleTable(r),
    '',
    '## End to end (lab)',
    '',
    ...labTable(r),
    '',
    '## Pod churn (lab)',
    '',
    'One lab node with its agent (`netfence agent --state`); the state lists 6 pods per pod/s of rate (labels ' +
      'app=churn, isolated by one NetworkPolicy), and bench/churn.ts (src/lab/churn.ts) creates and deletes them: per ' +
      'pod a namespace, a veth into the node and a /32 route, as a routed CNI does (the pod side of the veth stays ' +
      'down), each deleted 1 s after it was added by deleting its namespace (the veth goes with it: the kernel ' +
      'tears namespaces down in batches, while each `ip link del` of a veth waits ~17 ms for an RCU grace period ' +
      'under the rtnl lock), through long-lived `ip -batch` processes (four for namespaces; the node one replaced ' +
      'every 10 pods, since iproute2 keeps each named namespace open). A pod is enforced when its nf_endpoints ' +
      "entry (under its own, never reused ifindex, written once its hooks are attached) carries the policy's table " +
      'and the hooks it needs are recorded (clsact filter markers for pod veths), polled every 2 ms from outside ' +
      'the agent; the time runs from writing its `ip link add`.',
    '',
    ...churnTable(r),
    '',
    '## Transparent tunnel modes (lab)',
    '',
    'One lab node with its agent, two pods on it and a UDP service behind an iptables-DNAT ClusterIP whose ' +
      'backend is on the same node. Modes: off (same-node traffic stays on the node), fwmark (marked packets ' +
      'policy-routed out the uplink) and direct (bpf_redirect_neigh to the uplink). Interleaved rounds; a switch ' +
      "rewrites the NetfenceConfig and waits for the agent's readiness barrier. Per round and mode: DNS-like " +
      'queries to the ClusterIP (one datagram each, fresh source port, 1 s to answer; every unanswered one is ' +
      'lost) and bench/crr.c between the two pods (median over rounds; the gateway counts the hairpinned packets, ' +
      'so each mode is known to take its path).',
    '',
    ...tunnelTable(r),
    '',
    '## Local delivery',
    '',
    'The topology of the connection-rate part (client and server pods on one node), bench/crr.c between them. ' +
      'Four cases: a node without policies and one whose server is isolated by a policy that allows the client ' +
      `(${r.localDelivery ? r.localDelivery.policyCidrs : 100} prefixes), each with localDelivery on and off, as the ` +
      'agent programs them (the entries and the hooks src/compile/hooks.ts gives each endpoint: both hooks of both ' +
      'pods with local delivery; without it only the isolated pod has programs, and none without a policy: that ' +
      "case is bare against bare, the method's noise). Each case in " +
      `${r.localDelivery ? `${r.localDelivery.pairs} tight pairs of ${r.localDelivery.pairSeconds} s runs` : 'tight pairs'} ` +
      'against bare (programs detached; the median ratio). CPU per connection: the CPU time of the client and ' +
      'server processes, whose contexts run the packet path (veth transmit runs the softirq work in the sender), ' +
      "so the shared machine's other load is left out.",
    '',
    ...localDeliveryTable(r),
    '',
    '## CNI chain overhead',
    '',
    "Debian's reference plugins ptp + host-local, run as libcni runs a conflist (test/helpers/libcni.ts) in a " +
      'private node namespace, with and without netfence-cni (the executable dist/netfence-cni, which forwards the ' +
      'invocation to the agent) chained last; one sandbox ADDed and DELeted per sample, the chains interleaved. The ' +
      "agent socket answers at once: this is the plugin's own cost (process start, one round trip, the plugin logic " +
      "the agent runs); the agent's programming is in the lab part. `node -e 0` under nsenter, measured in the same " +
      'rounds, is what the node bundle (the fallback when the agent cannot answer) pays at least.',
    '',
    ...cniTable(r),
    '',
  ];
  const skipped = Object.entries(r.skipped);
  if (skipped.length) {
    out.push('## Not run or partial', '', ...skipped.map(([k, v]) => `- ${k}: ${v}`), '');
  }
  return out.join('\n');
}

// ---- chart -------------------------------------------------------------------------

const SERIES = [
  { engine: 'netfence', color: '#1f77b4' },
  { engine: 'iptables', color: '#d62728' },
  { engine: 'ipset', color: '#ff7f0e' },
] as const;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Round a maximum up to 1, 2 or 5 times a power of ten. */
function niceMax(x: number): number {
  if (!(x > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 5, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

function panel(title: string, data: Record<string, number>, x0: number, unit: string): string[] {
  const w = 420;
  const h = 260;
  const left = x0 + 60;
  const top = 40;
  const pw = w - 80;
  const ph = h - 90;
  const values = Object.values(data).filter((v) => Number.isFinite(v));
  const ymax = niceMax(Math.max(0, ...values) * 1.05);
  const xs = NET_RULE_COUNTS.map((_, i) => left + (pw * (i + 0.5)) / NET_RULE_COUNTS.length);
  const y = (v: number): number => top + ph - (ph * v) / ymax;
  const out = [
    `<text x="${x0 + w / 2}" y="22" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`,
    `<line x1="${left}" y1="${top + ph}" x2="${left + pw}" y2="${top + ph}" stroke="#333"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${top + ph}" stroke="#333"/>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const v = (ymax * i) / 4;
    const yy = y(v).toFixed(1);
    out.push(
      `<line x1="${left}" y1="${yy}" x2="${left + pw}" y2="${yy}" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle" font-size="10">${esc(fmt(v, v < 10 ? 1 : 0))}</text>`,
    );
  }
  NET_RULE_COUNTS.forEach((n, i) => {
    out.push(
      `<text x="${xs[i].toFixed(1)}" y="${top + ph + 16}" text-anchor="middle" font-size="10">${countLabel(n)}</text>`,
    );
  });
  out.push(
    `<text x="${left + pw / 2}" y="${top + ph + 34}" text-anchor="middle" font-size="11">rules (CIDR prefixes)</text>`,
    `<text x="${x0 + 14}" y="${top + ph / 2}" text-anchor="middle" font-size="11" transform="rotate(-90 ${x0 + 14} ${top + ph / 2})">${esc(unit)}</text>`,
  );
  if (Number.isFinite(data.bare)) {
    const yy = y(data.bare).toFixed(1);
    out.push(`<line x1="${left}" y1="${yy}" x2="${left + pw}" y2="${yy}" stroke="#2ca02c" stroke-dasharray="6 4"/>`);
  }
  for (const s of SERIES) {
    const pts = NET_RULE_COUNTS.map((n, i) => ({ x: xs[i], v: data[`${s.engine}_${countLabel(n)}`] })).filter((p) =>
      Number.isFinite(p.v),
    );
    if (pts.length > 1) {
      out.push(
        `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${pts.map((p) => `${p.x.toFixed(1)},${y(p.v).toFixed(1)}`).join(' ')}"/>`,
      );
    }
    for (const p of pts)
      out.push(`<circle cx="${p.x.toFixed(1)}" cy="${y(p.v).toFixed(1)}" r="3.5" fill="${s.color}"/>`);
  }
  return out;
}

export function renderChart(r: BenchResults): string {
  const width = 860;
  const height = 300;
  const legend = [
    ...SERIES.map((s) => ({ label: s.engine === 'ipset' ? 'iptables+ipset' : s.engine, color: s.color, dash: '' })),
    { label: 'bare', color: '#2ca02c', dash: ' stroke-dasharray="6 4"' },
  ];
  const body = [
    `<rect width="${width}" height="${height}" fill="white"/>`,
    ...panel('Connection rate', r.crr, 0, 'connections/s'),
    ...panel('Throughput', r.throughput, 430, 'Gbit/s'),
    ...legend.flatMap((l, i) => {
      const x = 160 + i * 150;
      return [
        `<line x1="${x}" y1="${height - 12}" x2="${x + 24}" y2="${height - 12}" stroke="${l.color}" stroke-width="2"${l.dash}/>`,
        `<text x="${x + 30}" y="${height - 12}" dominant-baseline="middle" font-size="11">${esc(l.label)}</text>`,
      ];
    }),
  ];
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    ...body.map((l) => `  ${l}`),
    '</svg>',
    '',
  ].join('\n');
}

/** Write REPORT.md and chart.svg into `dir` (bench/). */
export function writeReport(r: BenchResults, dir: string): void {
  writeFileSync(join(dir, 'chart.svg'), renderChart(r));
  writeFileSync(join(dir, 'REPORT.md'), renderReport(r));
}
