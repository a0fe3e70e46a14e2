// An in-process stand-in for kube-apiserver that speaks the real list/watch protocol:
// lists carry a resourceVersion (paged with limit/continue), `?watch=true` streams
// newline-delimited JSON events over a chunked response, replays history after the
// requested resourceVersion, sends BOOKMARKs to clients that allow them, and answers
// a compacted resourceVersion with 410 Gone (as HTTP 410 or as an ERROR event).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';

export interface Obj {
  metadata: { name: string; namespace?: string; resourceVersion?: string; [k: string]: unknown };
  [k: string]: unknown;
}

interface Event {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: Obj;
}

interface Watcher {
  path: string;
  res: http.ServerResponse;
  bookmarks: boolean;
}

interface Collection {
  items: Map<string, Obj>;
  events: Event[];
  /** items in key order, kept until they change: a paged list of 100k objects sorts once. */
  sorted?: Obj[];
}

const key = (o: Obj) => (o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name);

export class FakeApiServer {
  rv = 1000;
  /** Watches asking for a resourceVersion older than this get 410 Gone. */
  compactedRv = 0;
  goneAs: 'http' | 'event' = 'event';
  readonly lists = new Map<string, number>();
  readonly watches = new Map<string, number>();
  readonly watchQueries: URLSearchParams[] = [];
  /** Paths whose new watches get headers but never an event (a stalled stream). */
  readonly stalled = new Set<string>();
  private readonly collections = new Map<string, Collection>();
  private readonly gates = new Map<string, { promise: Promise<void>; open: () => void }>();
  private readonly watchers = new Set<Watcher>();
  private readonly sockets = new Set<Socket>();
  private server = http.createServer((req, res) => void this.handle(req, res));

  constructor(paths: string[]) {
    for (const p of paths) this.collections.set(p, { items: new Map(), events: [] });
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  async listen(host = '127.0.0.1', port = 0): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(port, host, resolve));
    return `http://${host}:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  count(map: Map<string, number>, path: string): number {
    return map.get(path) ?? 0;
  }

  /** Create or replace an object; `quiet` changes state without a watch event (a missed event). */
  put(path: string, obj: Obj, quiet = false): void {
    const c = this.col(path);
    const type = c.items.has(key(obj)) ? 'MODIFIED' : 'ADDED';
    const stored = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(++this.rv) } };
    c.items.set(key(obj), stored);
    c.sorted = undefined;
    if (!quiet) this.publish(path, { rv: this.rv, type, object: stored });
  }

  remove(path: string, name: string, namespace?: string, quiet = false): void {
    const c = this.col(path);
    const k = namespace ? `${namespace}/${name}` : name;
    const old = c.items.get(k);
    if (!old) throw new Error(`fake apiserver: no ${path} ${k}`);
    c.items.delete(k);
    c.sorted = undefined;
    const object = { ...old, metadata: { ...old.metadata, resourceVersion: String(++this.rv) } };
    if (!quiet) this.publish(path, { rv: this.rv, type: 'DELETED', object });
  }

  /** Forget history: every watch from an older resourceVersion now gets 410. */
  compact(): void {
    this.compactedRv = this.rv;
    for (const c of this.collections.values()) c.events = [];
  }

  /** Tell open watches their resourceVersion is gone (ERROR event with Status 410), then end them. */
  expireWatches(path?: string): void {
    for (const w of [...this.watchers]) {
      if (path && w.path !== path) continue;
      w.res.end(JSON.stringify({ type: 'ERROR', object: goneStatus() }) + '\n');
      this.watchers.delete(w);
    }
  }

  /** Kill every open watch connection without a proper end (network failure). */
  dropWatches(path?: string): void {
    for (const w of [...this.watchers]) {
      if (path && w.path !== path) continue;
      w.res.socket?.destroy();
      this.watchers.delete(w);
    }
  }

  bookmark(): void {
    for (const w of this.watchers) {
      if (!w.bookmarks) continue;
      const apiObj = { kind: 'Bookmark', metadata: { resourceVersion: String(this.rv) } };
      w.res.write(JSON.stringify({ type: 'BOOKMARK', object: apiObj }) + '\n');
    }
  }

  /** The current objects of a collection, as stored (with their resourceVersions). */
  objects(path: string): Obj[] {
    return [...this.col(path).items.values()];
  }

  serves(path: string): boolean {
    return this.collections.has(path);
  }

  openWatches(path: string): number {
    return [...this.watchers].filter((w) => w.path === path).length;
  }

  /** Hold list responses for a path until release(). */
  hold(path: string): void {
    let open!: () => void;
    const promise = new Promise<void>((r) => (open = r));
    this.gates.set(path, { promise, open });
  }

  release(path: string): void {
    this.gates.get(path)?.open();
    this.gates.delete(path);
  }

  private col(path: string): Collection {
    const c = this.collections.get(path);
    if (!c) throw new Error(`fake apiserver: unknown collection ${path}`);
    return c;
  }

  private publish(path: string, ev: Event): void {
    this.col(path).events.push(ev);
    for (const w of this.watchers) {
      if (w.path === path) w.res.write(JSON.stringify({ type: ev.type, object: ev.object }) + '\n');
    }
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const watch = url.searchParams.get('watch') === 'true';
    const counter = watch ? this.watches : this.lists;
    counter.set(url.pathname, this.count(counter, url.pathname) + 1);
    const c = this.collections.get(url.pathname);
    if (!c) {
      sendStatus(res, 404, 'NotFound', `the server could not find the requested resource ${url.pathname}`);
      return;
    }
    if (watch) this.watch(url, c, res);
    else await this.list(url, c, res);
  }

  private async list(url: URL, c: Collection, res: http.ServerResponse): Promise<void> {
    await this.gates.get(url.pathname)?.promise;
    const all = (c.sorted ??= [...c.items.keys()].sort().map((k) => c.items.get(k)!));
    const limit = Number(url.searchParams.get('limit') ?? 0) || all.length;
    const offset = Number(url.searchParams.get('continue') ?? 0);
    const page = all.slice(offset, offset + limit);
    const more = offset + limit < all.length;
    // Items on the wire carry no apiVersion/kind, as from the real apiserver.
    const items = page.map(({ apiVersion: _a, kind: _k, ...rest }) => rest);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        kind: 'List',
        apiVersion: 'v1',
        metadata: { resourceVersion: String(this.rv), ...(more ? { continue: String(offset + limit) } : {}) },
        items,
      }),
    );
  }

  private watch(url: URL, c: Collection, res: http.ServerResponse): void {
    this.watchQueries.push(url.searchParams);
    const from = Number(url.searchParams.get('resourceVersion') || 0);
    if (from < this.compactedRv) {
      if (this.goneAs === 'http') {
        sendStatus(res, 410, 'Expired', `too old resource version: ${from} (${this.compactedRv})`);
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ type: 'ERROR', object: goneStatus() }) + '\n');
      }
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    if (this.stalled.has(url.pathname)) return;
    for (const ev of c.events) {
      if (ev.rv > from) res.write(JSON.stringify({ type: ev.type, object: ev.object }) + '\n');
    }
    const w: Watcher = { path: url.pathname, res, bookmarks: url.searchParams.get('allowWatchBookmarks') === 'true' };
    this.watchers.add(w);
    const timeout = Number(url.searchParams.get('timeoutSeconds') ?? 0);
    const timer = timeout > 0 ? setTimeout(() => res.end(), timeout * 1000) : undefined;
    res.on('close', () => {
      clearTimeout(timer);
      this.watchers.delete(w);
    });
  }
}

function goneStatus(): object {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    status: 'Failure',
    message: 'too old resource version',
    reason: 'Expired',
    code: 410,
  };
}

function sendStatus(res: http.ServerResponse, code: number, reason: string, message: string): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason, code }));
}
