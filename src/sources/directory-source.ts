// The directory source as a SnapshotSource: the tree is loaded at start, after every
// change (per-directory watchers, debounced) and periodically (a missed event costs at
// most one period); a snapshot is handed on whenever the YAML content hash changed.
import type { Logger } from 'pino';
import type { Snapshot } from '../model/types';
import { ParseCache, snapshotOfFilesAsync } from './directory';
import { watchTree } from './dir-watch';
import type { SnapshotSource } from './source';
import { readStateDir, type StateFiles } from './state-files';

export interface DirectorySourceOptions {
  log: Logger;
  /** Quiet time after a change before reloading (default 20 ms: long enough to coalesce one
   *  editor save or `kubectl`-style rewrite, short enough for a 200 ms p99 policy change). */
  debounceMs?: number;
  /** Periodic reload (default 30 s). */
  resyncMs?: number;
  /** Files parsed before the source starts (the agent's settings read): not parsed again. */
  cache?: ParseCache;
}

export class DirectorySource implements SnapshotSource {
  private onSnapshot?: (snapshot: Snapshot, version: string) => void;
  private closers: (() => void)[] = [];
  private debounce?: NodeJS.Timeout;
  private lastVersion?: string;
  // Loads run one after another, so the newest content is always delivered last.
  private chain: Promise<void> = Promise.resolve();
  private readonly cache: ParseCache;

  constructor(
    readonly dir: string,
    private readonly opts: DirectorySourceOptions,
  ) {
    this.cache = opts.cache ?? new ParseCache();
  }

  async start(onSnapshot: (snapshot: Snapshot, version: string) => void): Promise<void> {
    if (this.onSnapshot) throw new Error(`start directory source ${this.dir}: already started`);
    const watcher = watchTree(this.dir, () => this.schedule(this.opts.debounceMs ?? 20));
    this.onSnapshot = onSnapshot;
    const timer = setInterval(() => this.schedule(0), this.opts.resyncMs ?? 30_000);
    this.closers = [() => watcher.close(), () => clearInterval(timer), () => clearTimeout(this.debounce)];
    await this.enqueue();
  }

  async stop(): Promise<void> {
    for (const c of this.closers.splice(0)) c();
    this.onSnapshot = undefined;
    await this.chain;
  }

  private schedule(delayMs: number): void {
    if (!this.onSnapshot) return;
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.enqueue(), delayMs);
  }

  private enqueue(): Promise<void> {
    this.chain = this.chain.then(() => this.load());
    return this.chain;
  }

  private async load(): Promise<void> {
    let state: StateFiles;
    try {
      state = await readStateDir(this.dir);
    } catch (e) {
      this.opts.log.error(`read state directory ${this.dir}: ${(e as Error).message}`);
      return;
    }
    // The version and the snapshot come from one read: the version names what is loaded.
    if (state.version === this.lastVersion || !this.onSnapshot) return;
    let snapshot: Snapshot;
    try {
      snapshot = await snapshotOfFilesAsync(state, this.cache);
    } catch (e) {
      this.opts.log.error(`load state directory ${this.dir}: ${(e as Error).message}`);
      return;
    }
    this.lastVersion = state.version;
    this.onSnapshot(snapshot, state.version);
  }
}
