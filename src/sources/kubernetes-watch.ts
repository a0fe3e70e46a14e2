// One supervised list+watch per resource over the client's ListWatch informer.
// The 1.x informer relists on 410 Gone by itself but stops for good on any other error
// and can hang silently on a dead connection, so this supervisor restarts it with
// jittered backoff, replaces it when the stream is silent too long (watchdog), and
// forces a fresh list now and then (resync). The object store is ours, not the
// informer's: a list replaces it wholesale, so a relist never leaves stale objects.
import { KubeConfig, ListWatch, Watch } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import {
  collectionPath,
  makeLister,
  resourceId,
  toKubeObject,
  type KubeList,
  type KubeObject,
  type WatchedResource,
} from './kubernetes-resources';

export interface WatchTiming {
  /** Server-side watch timeout; each watch asks for 1x..1.25x of it (spreads reconnects). */
  watchTimeoutSeconds: number;
  /** Replace the informer after this long without a list, an event or a (re)connect. */
  watchdogMs: number;
  /** Force a fresh list about this often (jittered). */
  resyncMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** Retry period for an optional API that is not served (CRD not installed). */
  absentRetryMs: number;
}

export const DEFAULT_TIMING: WatchTiming = {
  watchTimeoutSeconds: 300,
  watchdogMs: 300 * 1.25 * 1000 + 60_000,
  resyncMs: 30 * 60_000,
  backoffInitialMs: 500,
  backoffMaxMs: 30_000,
  absentRetryMs: 60_000,
};

type Phase = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

interface WatchHooks {
  timeoutSeconds(): number;
  /** A watch request is about to be sent (after any list has been applied). */
  onStart(): void;
  onEvent(phase: Phase, obj: unknown): void;
}

/** The client's Watch, asking for bookmarks and a server-side timeout, and reporting
 *  every event and every (re)connect to the supervisor. */
class SupervisedWatch extends Watch {
  constructor(
    kc: KubeConfig,
    private readonly hooks: WatchHooks,
  ) {
    super(kc);
  }

  override watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    this.hooks.onStart();
    const params = { ...queryParams, allowWatchBookmarks: true, timeoutSeconds: this.hooks.timeoutSeconds() };
    return super.watch(
      path,
      params,
      (phase, obj, raw) => {
        this.hooks.onEvent(phase as Phase, obj);
        callback(phase, obj, raw);
      },
      done,
    );
  }
}

export function statusCodeOf(err: unknown): number | undefined {
  const e = err as { statusCode?: unknown; code?: unknown } | null;
  if (typeof e?.statusCode === 'number') return e.statusCode;
  if (typeof e?.code === 'number') return e.code;
  return undefined;
}

function keyOf(o: KubeObject): string {
  return o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name;
}

export class ResourceWatcher {
  readonly id: string;
  private store = new Map<string, KubeObject>();
  private synced = false;
  private absent = false;
  private generation = 0;
  private informer?: ListWatch<KubeObject>;
  private lastActivity = 0;
  private failures = 0;
  private retryTimer?: NodeJS.Timeout;
  private watchdogTimer?: NodeJS.Timeout;
  private resyncTimer?: NodeJS.Timeout;
  private readonly list: () => Promise<KubeList>;

  constructor(
    private readonly kc: KubeConfig,
    readonly resource: WatchedResource,
    private readonly timing: WatchTiming,
    private readonly log: Logger,
    private readonly onChange: () => void,
    /** Each page of a list as it arrives (before the list is applied). */
    onListed?: (items: readonly KubeObject[]) => void,
  ) {
    this.id = resourceId(resource);
    this.list = makeLister(kc, resource, onListed);
  }

  get isSynced(): boolean {
    return this.synced;
  }

  get isAbsent(): boolean {
    return this.absent;
  }

  get size(): number {
    return this.store.size;
  }

  /** Objects in a stable order (by namespace/name). */
  objects(): KubeObject[] {
    return [...this.store.keys()].sort().map((k) => this.store.get(k)!);
  }

  start(): void {
    this.spawn('start');
    const every = Math.max(50, Math.floor(this.timing.watchdogMs / 4));
    this.watchdogTimer = setInterval(() => this.checkSilence(), every);
    this.scheduleResync();
  }

  stop(): void {
    this.generation++;
    clearTimeout(this.retryTimer);
    clearInterval(this.watchdogTimer);
    clearTimeout(this.resyncTimer);
    this.retryTimer = this.watchdogTimer = this.resyncTimer = undefined;
    void this.informer?.stop();
    this.informer = undefined;
  }

  /** A fresh informer (it lists before it watches); the old one is abandoned. */
  private spawn(reason: string): void {
    const gen = ++this.generation;
    void this.informer?.stop();
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.log.debug({ resource: this.id, reason }, 'kubernetes source: starting informer');

    let pending: KubeList | undefined;
    const listFn = async (): Promise<KubeList> => {
      try {
        const l = await this.list();
        if (gen === this.generation) pending = l;
        return l;
      } catch (err) {
        if (gen === this.generation && this.resource.optional && statusCodeOf(err) === 404) this.markAbsent();
        throw err;
      }
    };
    const watch = new SupervisedWatch(this.kc, {
      timeoutSeconds: () => Math.round(this.timing.watchTimeoutSeconds * (1 + Math.random() * 0.25)),
      onStart: () => {
        if (gen !== this.generation) return;
        this.lastActivity = Date.now();
        if (pending) {
          this.replace(pending.items);
          pending = undefined;
        }
      },
      onEvent: (phase, obj) => {
        if (gen === this.generation) this.onEvent(phase, obj);
      },
    });
    const informer = new ListWatch<KubeObject>(collectionPath(this.resource), watch, listFn, false);
    informer.on('error', (err) => {
      if (gen === this.generation) this.onFailure(err);
    });
    this.informer = informer;
    this.lastActivity = Date.now();
    informer.start().catch((err: unknown) => {
      if (gen === this.generation) this.onFailure(err);
    });
  }

  private onEvent(phase: Phase, obj: unknown): void {
    this.lastActivity = Date.now();
    this.failures = 0;
    if (phase === 'BOOKMARK') return;
    if (phase === 'ERROR') {
      // 410 Gone: the informer relists when the server ends the stream.
      this.log.info({ resource: this.id, status: obj }, 'kubernetes source: watch error event');
      return;
    }
    let o: KubeObject;
    try {
      o = toKubeObject(this.resource, obj);
    } catch (err) {
      this.log.warn({ resource: this.id, err: String(err) }, 'kubernetes source: ignoring malformed watch event');
      return;
    }
    if (phase === 'DELETED') this.store.delete(keyOf(o));
    else this.store.set(keyOf(o), o);
    this.onChange();
  }

  private replace(items: KubeObject[]): void {
    this.store = new Map(items.map((o) => [keyOf(o), o]));
    this.synced = true;
    this.absent = false;
    this.failures = 0;
    this.onChange();
  }

  private markAbsent(): void {
    if (this.absent) return;
    this.log.info({ resource: this.id }, 'kubernetes source: API not served (CRD not installed?); treating as empty');
    this.absent = true;
    this.store = new Map();
    this.synced = true;
    this.onChange();
  }

  /** The informer stopped (list or watch error other than 410): resume after a jittered
   *  backoff from its last resourceVersion (it relists if it has none or gets 410). */
  private onFailure(err: unknown): void {
    if (this.retryTimer) return;
    this.failures++;
    const cap = Math.min(this.timing.backoffMaxMs, this.timing.backoffInitialMs * 2 ** (this.failures - 1));
    const delay = this.absent ? this.timing.absentRetryMs : Math.round(cap * (0.5 + Math.random() * 0.5));
    if (!this.absent) {
      this.log.warn(
        { resource: this.id, err: String(err), retryMs: delay },
        'kubernetes source: informer stopped; restarting',
      );
    }
    const gen = this.generation;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (gen !== this.generation || !this.informer) return;
      this.lastActivity = Date.now();
      this.informer.start().catch((e: unknown) => {
        if (gen === this.generation) this.onFailure(e);
      });
    }, delay);
  }

  private checkSilence(): void {
    if (this.retryTimer) return;
    const silent = Date.now() - this.lastActivity;
    if (silent > this.timing.watchdogMs) {
      this.log.warn({ resource: this.id, silentMs: silent }, 'kubernetes source: watch silent too long; relisting');
      this.spawn('watchdog');
    }
  }

  private scheduleResync(): void {
    const delay = Math.round(this.timing.resyncMs * (0.9 + Math.random() * 0.2));
    this.resyncTimer = setTimeout(() => {
      this.spawn('resync');
      this.scheduleResync();
    }, delay);
  }
}
