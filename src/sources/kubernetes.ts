// The Kubernetes API source: one supervised informer per watched resource; once every
// one of them has listed, each burst of changes becomes one snapshot built by the same
// per-object parsing the directory source uses.
import { KubeConfig } from '@kubernetes/client-node';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type { Logger } from 'pino';
import { assembleSnapshot, decodeObjects, type DecodedDoc, type SourceObject } from '../model/snapshot';
import type { Snapshot } from '../model/types';
import { parseYamlText } from './directory';
import type { SnapshotSource } from './source';
import { WATCHED_RESOURCES, type KubeObject } from './kubernetes-resources';
import { DEFAULT_TIMING, ResourceWatcher, type WatchTiming } from './kubernetes-watch';

export { WATCHED_RESOURCES } from './kubernetes-resources';
export type { KubeObject, WatchedResource } from './kubernetes-resources';

/** Turns the current objects (wire form, every watched kind) into a snapshot; `prepare`,
 *  when there, is given each page of a list as it arrives, to do ahead what it can. */
export type SnapshotBuilder = ((objects: readonly KubeObject[]) => Snapshot) & {
  prepare?: (objects: readonly KubeObject[]) => void;
};

/** An object's decoded form, kept on the object (a symbol: not on the wire, not among its
 *  keys); a WeakMap of 100k objects cost more in lookups and in every collection. Decoding
 *  reads the object alone, so any builder may reuse it. */
const DECODED = Symbol('decoded');
type Decoded = KubeObject & { [DECODED]?: DecodedDoc[] };

/** The same per-object parsing as the directory source. `config` holds the agent's
 *  NetfenceConfig document(s) (its netfence.yaml, parsed with parseYamlText). Each object is
 *  decoded once: the watchers replace an object on every change, so a snapshot after one
 *  event decodes that object alone and reuses the others' decoded form. */
export function apiSnapshotBuilder(config: readonly SourceObject[] = []): SnapshotBuilder {
  const settings = decodeObjects(config);
  const decode = (o: KubeObject): DecodedDoc[] => ((o as Decoded)[DECODED] ??= decodeObjects([{ doc: o }]));
  // Decoding the objects of a list while its next page is fetched: a cold start of 100k
  // pods then waits for the last page's decode, not for every page's.
  const prepare = (objects: readonly KubeObject[]): void => objects.forEach(decode);
  return Object.assign((objects: readonly KubeObject[]) => assembleSnapshot([settings, ...objects.map(decode)]), {
    prepare,
  });
}

export interface KubernetesSourceOptions {
  kubeConfig: KubeConfig;
  /** Default: apiSnapshotBuilder() (built-in NetfenceConfig defaults). */
  buildSnapshot?: SnapshotBuilder;
  log: Logger;
  /** Quiet time that ends a burst of changes (default 50 ms; maxDelayMs bounds a long burst). */
  debounceMs?: number;
  /** Upper bound on how long a steady stream of changes can delay a snapshot (default 2 s). */
  maxDelayMs?: number;
  timing?: Partial<WatchTiming>;
}

export interface ResourceStatus {
  resource: string;
  synced: boolean;
  absent: boolean;
  objects: number;
}

/** Kubeconfig from a file, or the in-cluster service account when no file is given. */
export function loadKubeConfig(file?: string): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (file) kc.loadFromFile(file);
    else kc.loadFromCluster();
  } catch (err) {
    throw new Error(`load kubeconfig ${file ?? '(in-cluster)'}: ${(err as Error).message}`);
  }
  if (!kc.getCurrentCluster()) throw new Error(`load kubeconfig ${file ?? '(in-cluster)'}: no current cluster`);
  return kc;
}

export class KubernetesSource implements SnapshotSource {
  private watchers: ResourceWatcher[] = [];
  private onSnapshot?: (s: Snapshot, version: string) => void;
  private debounceTimer?: NodeJS.Timeout;
  private firstPendingAt = 0;
  private readonly debounceMs: number;
  private readonly maxDelayMs: number;
  private readonly build: SnapshotBuilder;

  constructor(private readonly opts: KubernetesSourceOptions) {
    this.build = opts.buildSnapshot ?? apiSnapshotBuilder();
    this.debounceMs = opts.debounceMs ?? 50;
    this.maxDelayMs = opts.maxDelayMs ?? 2000;
  }

  async start(onSnapshot: (s: Snapshot, version: string) => void): Promise<void> {
    if (this.onSnapshot) throw new Error('start kubernetes source: already started');
    this.onSnapshot = onSnapshot;
    const timing = { ...DEFAULT_TIMING, ...this.opts.timing };
    this.watchers = WATCHED_RESOURCES.map(
      (r) =>
        new ResourceWatcher(
          this.opts.kubeConfig,
          r,
          timing,
          this.opts.log,
          () => this.changed(),
          (items) => this.build.prepare?.(items),
        ),
    );
    for (const w of this.watchers) w.start();
  }

  async stop(): Promise<void> {
    clearTimeout(this.debounceTimer);
    this.debounceTimer = undefined;
    for (const w of this.watchers) w.stop();
    this.watchers = [];
    this.onSnapshot = undefined;
  }

  /** True once every resource has been listed at least once (readiness). */
  isSynced(): boolean {
    return this.watchers.length > 0 && this.watchers.every((w) => w.isSynced);
  }

  status(): ResourceStatus[] {
    return this.watchers.map((w) => ({
      resource: w.id,
      synced: w.isSynced,
      absent: w.isAbsent,
      objects: w.size,
    }));
  }

  private changed(): void {
    if (!this.isSynced()) return;
    const now = Date.now();
    if (!this.debounceTimer) this.firstPendingAt = now;
    clearTimeout(this.debounceTimer);
    const wait = Math.max(0, Math.min(this.debounceMs, this.firstPendingAt + this.maxDelayMs - now));
    this.debounceTimer = setTimeout(() => this.emit(), wait);
  }

  private emit(): void {
    this.debounceTimer = undefined;
    const deliver = this.onSnapshot;
    if (!deliver) return;
    const objects = this.watchers.flatMap((w) => w.objects());
    let snapshot: Snapshot;
    try {
      snapshot = this.build(objects);
    } catch (err) {
      this.opts.log.error({ err: String(err) }, 'kubernetes source: building snapshot failed');
      return;
    }
    deliver(snapshot, objectsVersion(objects));
  }
}

/** Names a set of objects: every change gets a new resourceVersion from the apiserver,
 *  so the same state (a relist included) always hashes the same. */
export function objectsVersion(objects: readonly KubeObject[]): string {
  const ids = objects.map((o) =>
    [o.apiVersion, o.kind, o.metadata.namespace ?? '', o.metadata.name, o.metadata.resourceVersion ?? ''].join('\0'),
  );
  return createHash('sha256').update(ids.sort().join('\n')).digest('hex');
}

/** The NetfenceConfig document(s) of a config file (the ConfigMap's netfence.yaml). */
export function readConfigFile(file: string): SourceObject[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`read config ${file}: ${(err as Error).message}`);
  }
  const parsed = parseYamlText(text, file);
  if (parsed.errors.length) throw new Error(`read config ${file}: ${parsed.errors[0].message}`);
  return parsed.objects;
}

/** The agent's Kubernetes source: kubeconfig file or in-cluster credentials, and the
 *  NetfenceConfig from `configFile` (the ConfigMap's netfence.yaml) when given. */
export function createKubernetesSource(opts: {
  kubeconfig?: string;
  configFile?: string;
  log: Logger;
  debounceMs?: number;
}): KubernetesSource {
  return new KubernetesSource({
    kubeConfig: loadKubeConfig(opts.kubeconfig),
    buildSnapshot: apiSnapshotBuilder(opts.configFile ? readConfigFile(opts.configFile) : []),
    log: opts.log,
    debounceMs: opts.debounceMs,
  });
}
