// Child process of the control-plane benchmark (its peak RSS is the compile's):
//   node dist/bench/compile-child.js --size big|small --rounds R --samples K
// Prints one JSON event per line (ChildEvent) as it goes, so the parent keeps what
// finished when it stops a slow run at its deadline.
import { parseArgs } from 'node:util';
import { Compiler, type CompileResult } from '../src/compile';
import type { PodObj, Snapshot } from '../src/model/types';
import type { DiscoveredEndpoint } from '../src/compile/endpoint';
import { planDiff } from '../src/reconcile/plan';
import { BENCH_NODE, BIG_CLUSTER, SMALL_CLUSTER, localEndpoints, makeCluster, makePod } from './cluster';

export type ChangeName = 'podAdd' | 'podRemove' | 'policyChange';

export type ChildEvent =
  | { kind: 'meta'; pods: number; namespaces: number; policies: number; nodes: number; localEndpoints: number }
  | { kind: 'compile'; ms: number; rssMb: number; mapEntries: Record<string, number>; bpfMemoryBytes: number; errors: number }
  | { kind: 'change'; name: ChangeName; updates: number; ms: number };

function emit(e: ChildEvent): void {
  process.stdout.write(`${JSON.stringify(e)}\n`);
}

function timed<T>(f: () => T): { value: T; ms: number } {
  const t0 = process.hrtime.bigint();
  const value = f();
  return { value, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
}

/** Map writes (updates + deletes) that take `from` to `to`. */
function updateCount(to: CompileResult, from: CompileResult): number {
  return planDiff(to.maps, from.maps).diffs.reduce((n, d) => n + d.updates.length + d.deletes.length, 0);
}

/** Recompile a changed snapshot and diff it against the base: the work one change costs.
 *  As in the agent, a long-lived Compiler that last compiled the base does it. */
function change(name: ChangeName, compiler: Compiler, base: CompileResult, i: number, variant: (i: number) => { s: Snapshot; eps: DiscoveredEndpoint[] }): void {
  const { s, eps } = variant(i);
  const t = timed(() => updateCount(compiler.compile(s, BENCH_NODE, eps), base));
  emit({ kind: 'change', name, updates: t.value, ms: t.ms });
}

function main(): void {
  const { values } = parseArgs({
    options: { size: { type: 'string', default: 'big' }, rounds: { type: 'string', default: '3' }, samples: { type: 'string', default: '5' } },
  });
  const spec = values.size === 'small' ? SMALL_CLUSTER : BIG_CLUSTER;
  const rounds = Number(values.rounds);
  const samples = Number(values.samples);
  const s = makeCluster(spec);
  const eps = localEndpoints(s, BENCH_NODE);
  emit({ kind: 'meta', ...spec, localEndpoints: eps.length });

  let base: CompileResult | undefined;
  let compiler = new Compiler();
  for (let r = 0; r < rounds; r++) {
    // Each round from scratch: the first compile of an agent.
    compiler = new Compiler();
    const t = timed(() => compiler.compile(s, BENCH_NODE, eps));
    base = t.value;
    const mapEntries: Record<string, number> = {};
    let bpfMemoryBytes = 0;
    for (const [name, content] of Object.entries(base.maps)) {
      mapEntries[name] = content.size;
      for (const e of content.values()) bpfMemoryBytes += e.key.length + e.value.length;
    }
    const rssMb = process.resourceUsage().maxRSS / 1024;
    emit({ kind: 'compile', ms: t.ms, rssMb, mapEntries, bpfMemoryBytes, errors: base.errors.length });
  }
  const result = base!;

  const local = s.pods.filter((p) => p.nodeName === BENCH_NODE);
  const endpointOf = (p: PodObj): DiscoveredEndpoint => localEndpoints({ ...s, pods: [p] }, BENCH_NODE)[0];

  const podAdd = (i: number): { s: Snapshot; eps: DiscoveredEndpoint[] } => {
    const pod = { ...makePod(spec.pods + i * spec.nodes, spec.namespaces, spec.nodes), nodeName: BENCH_NODE };
    return { s: { ...s, pods: [...s.pods, pod] }, eps: [...eps, endpointOf(pod)] };
  };
  const podRemove = (i: number): { s: Snapshot; eps: DiscoveredEndpoint[] } => {
    const gone = local[i % local.length];
    const key = `${gone.namespace}/${gone.name}`;
    return { s: { ...s, pods: s.pods.filter((p) => p !== gone) }, eps: eps.filter((e) => e.pod !== key) };
  };
  // Change the port of a NetworkPolicy in a namespace that has pods on this node.
  const localNs = new Set(local.map((p) => p.namespace));
  const candidates = s.policies.filter((p) => p.ref.kind === 'NetworkPolicy' && localNs.has(p.ref.namespace ?? ''));
  const policyChange = (i: number): { s: Snapshot; eps: DiscoveredEndpoint[] } => {
    const old = candidates[i % candidates.length];
    const changed = { ...old, rules: old.rules.map((r, j) => (j === 0 ? { ...r, ports: [{ protocol: 'TCP' as const, port: 20000 + i }] } : r)) };
    return { s: { ...s, policies: s.policies.map((p) => (p === old ? changed : p)) }, eps };
  };
  // Interleaved, so a deadline leaves some samples of each kind.
  const kinds = [['podAdd', podAdd], ['podRemove', podRemove], ['policyChange', policyChange]] as const;
  // One untimed change of each kind first (JIT warm-up, and the cold rounds' garbage collected).
  for (const [, variant] of kinds) {
    const warm = variant(samples);
    compiler.compile(warm.s, BENCH_NODE, warm.eps);
  }
  for (let i = 0; i < samples; i++) {
    for (const [name, variant] of kinds) {
      compiler.compile(s, BENCH_NODE, eps); // back at the base, untimed
      change(name, compiler, result, i, variant);
    }
  }
}

main();
