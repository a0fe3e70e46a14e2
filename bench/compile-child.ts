// Child process of the control-plane benchmark (its peak RSS is the compile's):
//   node dist/bench/compile-child.js --size big|small --rounds R --samples K
// Prints one JSON event per line (ChildEvent) as it goes, so the parent keeps what
// finished when it stops a slow run at its deadline.
// A change is timed as the agent enforces it: recompile, then a Reconciler pass that
// writes the difference into the maps of the real netfence object loaded in the kernel
// (unpinned, freed at exit). Programs are not attached: the synthetic endpoints have no
// interfaces; attaching to a new veth is timed by the lab part (veth -> isolation).
import { parseArgs } from 'node:util';
import { Compiler } from '../src/compile';
import type { PodObj, Snapshot } from '../src/model/types';
import type { DiscoveredEndpoint } from '../src/compile/endpoint';
import type { Reconciler } from '../src/reconcile/reconciler';
import { BENCH_NODE, BIG_CLUSTER, SMALL_CLUSTER, localEndpoints, makeCluster, makePod } from './cluster';
import { kernelReconciler } from './kernel-maps';

export type ChangeName = 'podAdd' | 'podRemove' | 'policyChange';

export type ChildEvent =
  | { kind: 'meta'; pods: number; namespaces: number; policies: number; nodes: number; localEndpoints: number }
  | {
      kind: 'compile';
      ms: number;
      rssMb: number;
      mapEntries: Record<string, number>;
      bpfMemoryBytes: number;
      errors: number;
    }
  | { kind: 'change'; name: ChangeName; updates: number; ms: number };

function emit(e: ChildEvent): void {
  process.stdout.write(`${JSON.stringify(e)}\n`);
}

function timed<T>(f: () => T): { value: T; ms: number } {
  const t0 = process.hrtime.bigint();
  const value = f();
  return { value, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
}

/** Compile and write into the kernel maps; returns the map writes (updates + deletes). */
function enforce(compiler: Compiler, reconciler: Reconciler, s: Snapshot, eps: DiscoveredEndpoint[]): number {
  const out = compiler.compile(s, BENCH_NODE, eps);
  const r = reconciler.apply(out.maps, out.endpoints);
  if (!r.ok || r.failed.length)
    throw new Error(`enforce on kernel maps: ${r.error ?? r.failed.map((f) => f.error).join('; ')}`);
  const sum = (o: Partial<Record<string, number>>): number =>
    Object.values(o).reduce((n: number, x) => n + (x ?? 0), 0);
  return sum(r.updates) + sum(r.deletes);
}

/** One change as the agent enforces it, by the long-lived Compiler and Reconciler that
 *  last enforced the base. */
function change(
  name: ChangeName,
  compiler: Compiler,
  reconciler: Reconciler,
  i: number,
  variant: (i: number) => { s: Snapshot; eps: DiscoveredEndpoint[] },
): void {
  const { s, eps } = variant(i);
  const t = timed(() => enforce(compiler, reconciler, s, eps));
  emit({ kind: 'change', name, updates: t.value, ms: t.ms });
}

function main(): void {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: 'big' },
      rounds: { type: 'string', default: '3' },
      samples: { type: 'string', default: '5' },
    },
  });
  const spec = values.size === 'small' ? SMALL_CLUSTER : BIG_CLUSTER;
  const rounds = Number(values.rounds);
  const samples = Number(values.samples);
  const s = makeCluster(spec);
  const eps = localEndpoints(s, BENCH_NODE);
  emit({ kind: 'meta', ...spec, localEndpoints: eps.length });

  let compiler = new Compiler();
  for (let r = 0; r < rounds; r++) {
    // Each round from scratch: the first compile of an agent.
    compiler = new Compiler();
    globalThis.gc?.();
    const t = timed(() => compiler.compile(s, BENCH_NODE, eps));
    const base = t.value;
    const mapEntries: Record<string, number> = {};
    let bpfMemoryBytes = 0;
    for (const [name, content] of Object.entries(base.maps)) {
      mapEntries[name] = content.size;
      for (const e of content.values()) bpfMemoryBytes += e.key.length + e.value.length;
    }
    const rssMb = process.resourceUsage().maxRSS / 1024;
    emit({ kind: 'compile', ms: t.ms, rssMb, mapEntries, bpfMemoryBytes, errors: base.errors.length });
  }
  // The base into the kernel maps once (untimed: that is a first start, not a change).
  const { reconciler, close } = kernelReconciler();
  enforce(compiler, reconciler, s, eps);

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
    const changed = {
      ...old,
      rules: old.rules.map((r, j) => (j === 0 ? { ...r, ports: [{ protocol: 'TCP' as const, port: 20000 + i }] } : r)),
    };
    return { s: { ...s, policies: s.policies.map((p) => (p === old ? changed : p)) }, eps };
  };
  // Interleaved, so a deadline leaves some samples of each kind.
  const kinds = [
    ['podAdd', podAdd],
    ['podRemove', podRemove],
    ['policyChange', policyChange],
  ] as const;
  // One untimed change of each kind first (JIT warm-up, and the cold rounds' garbage collected).
  for (const [, variant] of kinds) {
    const warm = variant(samples);
    enforce(compiler, reconciler, warm.s, warm.eps);
  }
  for (let i = 0; i < samples; i++) {
    for (const [name, variant] of kinds) {
      enforce(compiler, reconciler, s, eps); // back at the base, untimed
      change(name, compiler, reconciler, i, variant);
    }
  }
  close();
}

main();
