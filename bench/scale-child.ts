// Child process of the scale benchmark (its peak RSS is the apply's):
//   node --expose-gc dist/bench/scale-child.js --from files --dir DIR [--samples K]
//   node --expose-gc dist/bench/scale-child.js --from api --kubeconfig FILE --config NETFENCE_YAML
// From files: an agent start on a state directory (settings, hash, load, compile for node-0,
// write into the maps of the real netfence object in the kernel), then one file edited and
// reloaded (the files parsed again are counted), the RSS after a collection (the agent's
// steady state: parse cache, snapshot, compiler and reconciler held), then K pods added and
// K changes to cnp-0 (the ClusterNetworkPolicy whose subject is 1 in 100 pods), each timed as
// the agent enforces it (recompile + write the difference).
// From the API: the Kubernetes source lists every resource from the (fake) API server
// through the client's list/watch path; its first snapshot is compiled and written.
// Prints one JSON line (ScaleChildResult).
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { Compiler } from '../src/compile';
import type { DiscoveredEndpoint } from '../src/compile/endpoint';
import type { Policy } from '../src/model/rules';
import { buildSnapshot } from '../src/model/snapshot';
import type { PodObj, Snapshot } from '../src/model/types';
import type { Reconciler } from '../src/reconcile/reconciler';
import { selectionMatches } from '../src/selectors/resolve';
import { ParseCache, loadStateDirConfigAsync, snapshotOfFilesAsync } from '../src/sources/directory';
import { readStateDir } from '../src/sources/state-files';
import { BENCH_NODE, localEndpoints } from './cluster';
import { kernelReconciler } from './kernel-maps';

export interface ScaleChildResult {
  pods: number;
  namespaces: number;
  policies: number;
  localEndpoints: number;
  errors: number;
  /** Source start (files: settings read) to map entries written. */
  applyMs: number;
  loadMs: number;
  compileMs: number;
  writeMs: number;
  peakRssMb: number;
  mapEntries: Record<string, number>;
  /** Files only: one file edited, reload + compile + write, and the files parsed again. */
  reload?: { ms: number; filesParsed: number; files: number };
  /** Files only: RSS after a full collection once applied and reloaded. */
  steadyRssMb?: number;
  podAdd?: Changes;
  /** Pods the changed policy's subject selects (cluster-wide). */
  policyChangePods?: number;
  policyChange?: Changes;
}

interface Changes {
  /** Map writes (updates + deletes) of the last change. */
  updates: number;
  samplesMs: number[];
}

interface Applied {
  out: ReturnType<Compiler['compile']>;
  compileMs: number;
  writeMs: number;
  writes: number;
}

/** Compile for BENCH_NODE and write the difference into the kernel maps. */
function enforce(compiler: Compiler, reconciler: Reconciler, s: Snapshot, eps: DiscoveredEndpoint[]): Applied {
  const t0 = performance.now();
  const out = compiler.compile(s, BENCH_NODE, eps);
  const t1 = performance.now();
  const r = reconciler.apply(out.maps, out.endpoints);
  const t2 = performance.now();
  if (!r.ok || r.failed.length)
    throw new Error(`enforce on kernel maps: ${r.error ?? r.failed.map((f) => f.error).join('; ')}`);
  const sum = (o: Partial<Record<string, number>>): number =>
    Object.values(o).reduce((n: number, x) => n + (x ?? 0), 0);
  return { out, compileMs: t1 - t0, writeMs: t2 - t1, writes: sum(r.updates) + sum(r.deletes) };
}

function summary(s: Snapshot, eps: DiscoveredEndpoint[], a: Applied, loadMs: number): ScaleChildResult {
  return {
    pods: s.pods.length,
    namespaces: s.namespaces.length,
    policies: s.policies.length,
    localEndpoints: eps.length,
    errors: s.errors.length + a.out.errors.length,
    applyMs: loadMs + a.compileMs + a.writeMs,
    loadMs,
    compileMs: a.compileMs,
    writeMs: a.writeMs,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    mapEntries: Object.fromEntries(Object.entries(a.out.maps).map(([m, c]) => [m, c.size])),
  };
}

function timedChanges(samples: number, base: () => void, change: (i: number) => number): Changes {
  const samplesMs: number[] = [];
  let updates = 0;
  change(samples); // untimed warm-up
  for (let i = 0; i < samples; i++) {
    base();
    const t = performance.now();
    updates = change(i);
    samplesMs.push(performance.now() - t);
  }
  base();
  return { updates, samplesMs };
}

/** A replica of a local pod (same namespace and labels, a new name, address and veth). */
function replica(template: PodObj, i: number): { pod: PodObj; ep: DiscoveredEndpoint } {
  const pod = { ...template, name: `${template.name}-r${i}`, ips: [`10.250.${i >> 8}.${i & 255}`] };
  return { pod, ep: { ifname: `vethr${i}`, ifindex: 900_000 + i, kind: 'pod', pod: `${pod.namespace}/${pod.name}` } };
}

function subjectPods(s: Snapshot, p: Policy): number {
  if (p.subject.kind !== 'pods') return 0;
  const sel = p.subject;
  const labels = new Map(s.namespaces.map((n) => [n.name, n.labels]));
  return s.pods.filter((pod) => selectionMatches(sel, pod.namespace, () => labels.get(pod.namespace) ?? {}, pod.labels))
    .length;
}

async function fromFiles(dir: string, samples: number): Promise<ScaleChildResult> {
  const compiler = new Compiler();
  const cache = new ParseCache();
  const t0 = performance.now();
  const config = await loadStateDirConfigAsync(dir, cache);
  // The maps sized by the settings, as the agent does; loading the object is not timed.
  const t = performance.now();
  const { reconciler, close } = kernelReconciler(config.capacity);
  const openMs = performance.now() - t;
  // As the directory source loads: one read gives the version and the texts (in a function
  // of its own, so the texts read are not held past the load, as in the agent).
  const load = async (): Promise<Snapshot> => snapshotOfFilesAsync(await readStateDir(dir), cache);
  const s = await load();
  const loadMs = performance.now() - t0 - openMs;
  const eps = localEndpoints(s, BENCH_NODE);
  const result = summary(s, eps, enforce(compiler, reconciler, s, eps), loadMs);

  const files = cache.parses;
  const file = fs.readdirSync(dir).filter((f) => f.startsWith('ns-'))[0];
  fs.appendFileSync(path.join(dir, file), '# edited\n');
  const t1 = performance.now();
  const edited = await load();
  enforce(compiler, reconciler, edited, eps);
  result.reload = { ms: performance.now() - t1, filesParsed: cache.parses - files, files };
  globalThis.gc?.();
  result.steadyRssMb = process.memoryUsage().rss / 1024 / 1024;

  const base = (): void => void enforce(compiler, reconciler, s, eps);
  const template = s.pods.find((p) => p.nodeName === BENCH_NODE);
  if (!template) throw new Error(`no pod on ${BENCH_NODE}`);
  result.podAdd = timedChanges(samples, base, (i) => {
    const { pod, ep } = replica(template, i);
    return enforce(compiler, reconciler, { ...s, pods: [...s.pods, pod] }, [...eps, ep]).writes;
  });
  const cnp = s.policies.find((p) => p.ref.kind === 'ClusterNetworkPolicy' && p.ref.name === 'cnp-0');
  if (cnp) {
    result.policyChangePods = subjectPods(s, cnp);
    result.policyChange = timedChanges(samples, base, (i) => {
      const changed = {
        ...cnp,
        rules: cnp.rules.map((r, j) =>
          j === 0 ? { ...r, ports: [{ protocol: 'TCP' as const, port: 20000 + i }] } : r,
        ),
      };
      return enforce(compiler, reconciler, { ...s, policies: s.policies.map((p) => (p === cnp ? changed : p)) }, eps)
        .writes;
    });
  }
  close();
  return result;
}

/** A source that cannot list (a refused connection retried with backoff) fails the run. */
const API_DEADLINE_MS = 10 * 60_000;

async function fromApi(kubeconfig: string, configFile: string): Promise<ScaleChildResult> {
  // As the agent does (cli/agent-source.ts): the client library only for this source, so
  // the files child's RSS is that of an agent on a state directory.
  const { KubernetesSource, apiSnapshotBuilder, loadKubeConfig, readConfigFile } =
    await import('../src/sources/kubernetes');
  const settings = readConfigFile(configFile);
  const { reconciler, close } = kernelReconciler(buildSnapshot(settings).config.capacity);
  const t0 = performance.now();
  const source = new KubernetesSource({
    kubeConfig: loadKubeConfig(kubeconfig),
    buildSnapshot: apiSnapshotBuilder(settings),
    log: pino({ level: 'silent' }),
  });
  const s = await new Promise<Snapshot>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no snapshot from the Kubernetes source in ${API_DEADLINE_MS / 1000} s`)),
      API_DEADLINE_MS,
    );
    void source.start((snapshot) => {
      clearTimeout(timer);
      resolve(snapshot);
    });
  });
  const loadMs = performance.now() - t0;
  await source.stop();
  const eps = localEndpoints(s, BENCH_NODE);
  const result = summary(s, eps, enforce(new Compiler(), reconciler, s, eps), loadMs);
  close();
  return result;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      from: { type: 'string' },
      dir: { type: 'string' },
      kubeconfig: { type: 'string' },
      config: { type: 'string' },
      samples: { type: 'string', default: '20' },
    },
  });
  const result =
    values.from === 'api'
      ? await fromApi(values.kubeconfig!, values.config!)
      : await fromFiles(values.dir!, Number(values.samples));
  process.stdout.write(`${JSON.stringify(result)}\n`);
  // The source's watches may hold sockets open a moment longer.
  process.exit(0);
}

main().catch((e: Error) => {
  process.stderr.write(`scale child: ${e.message}\n`);
  process.exit(1);
});
