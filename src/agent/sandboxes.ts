// The pod sandboxes the agent learned from CNI ADD, keyed by pod: the current sandbox's
// container ID, its interface and netns, the host-side interface and the addresses of the
// interface plugin's result. A DEL for another container ID (the kubelet sends late DELs
// for sandboxes it already replaced) changes nothing. Kept in the agent's run directory
// (/run/netfence/<hash of the bpffs root>/sandboxes.json, written atomically), so a
// restarted agent enforces these pods again at its first pass, before it reports ready.
import fs from 'node:fs';
import path from 'node:path';
import { DEFAULT_RUN_DIR, namesFilePath } from './names-file';
import { writeFileAtomic } from './write-atomic';

export const SANDBOXES_FILE_VERSION = 1;

export interface HostInterface {
  name: string;
  /** Verifies later that a link of that name is still this one (names are reused). */
  ifindex: number;
}

export interface Sandbox {
  /** namespace/name */
  pod: string;
  containerId: string;
  /** CNI_IFNAME, inside the sandbox. */
  ifName: string;
  /** CNI_NETNS: the sandbox is gone once this path is. */
  netns: string;
  hostIf?: HostInterface;
  /** Canonical addresses of the interface plugin's result. */
  ips: string[];
}

export type DelOutcome = 'deleted' | 'stale' | 'unknown';

export function sandboxesFilePath(bpffsRoot: string, runDir = DEFAULT_RUN_DIR): string {
  return path.join(path.dirname(namesFilePath(bpffsRoot, runDir)), 'sandboxes.json');
}

const isStr = (v: unknown): v is string => typeof v === 'string';

function decodeSandbox(v: unknown, at: string): Sandbox {
  const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  for (const f of ['pod', 'containerId', 'ifName', 'netns']) if (!isStr(o[f]) || o[f] === '') throw new Error(`${at}.${f}: must be a non-empty string`);
  if (!Array.isArray(o.ips) || !o.ips.every(isStr)) throw new Error(`${at}.ips: must be a list of strings`);
  const h = o.hostIf as Record<string, unknown> | undefined;
  if (h !== undefined && (!isStr(h?.name) || !Number.isInteger(h?.ifindex))) throw new Error(`${at}.hostIf: must be { name, ifindex }`);
  return {
    pod: o.pod as string,
    containerId: o.containerId as string,
    ifName: o.ifName as string,
    netns: o.netns as string,
    ...(h && { hostIf: { name: h.name as string, ifindex: h.ifindex as number } }),
    ips: o.ips,
  };
}

export class Sandboxes {
  private readonly byPod = new Map<string, Sandbox>();
  /** Saves run one after another (they share the temporary file). */
  private saving: Promise<void> = Promise.resolve();

  constructor(readonly file: string) {}

  /** Loads the file; none (first start) is no warning; a file that cannot be used is
   *  ignored with one: those pods are enforced again as their CNI ADD is retried or as
   *  route discovery finds them. */
  load(): { warning?: string } {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
      return { warning: `load sandboxes file ${this.file}: ${(e as Error).message} (ignored)` };
    }
    try {
      const saved = JSON.parse(text) as { version?: unknown; sandboxes?: unknown };
      if (saved.version !== SANDBOXES_FILE_VERSION) throw new Error(`version: expected ${SANDBOXES_FILE_VERSION}, got ${JSON.stringify(saved.version)}`);
      if (!Array.isArray(saved.sandboxes)) throw new Error('sandboxes: must be a list');
      const list = saved.sandboxes.map((s, i) => decodeSandbox(s, `sandboxes[${i}]`));
      this.byPod.clear();
      for (const s of list) this.byPod.set(s.pod, s);
      return {};
    } catch (e) {
      return { warning: `load sandboxes file ${this.file}: ${(e as Error).message} (ignored)` };
    }
  }

  get(pod: string): Sandbox | undefined {
    return this.byPod.get(pod);
  }

  all(): Sandbox[] {
    return [...this.byPod.values()];
  }

  get size(): number {
    return this.byPod.size;
  }

  /** ADD: the pod's current sandbox (replacing an older one); on disk when it resolves. */
  async set(s: Sandbox): Promise<void> {
    this.byPod.set(s.pod, s);
    await this.save();
  }

  /** DEL: forgets the pod's sandbox only when `containerId` is the current one. */
  async delete(pod: string, containerId: string): Promise<DelOutcome> {
    const s = this.byPod.get(pod);
    if (!s) return 'unknown';
    if (s.containerId !== containerId) return 'stale';
    this.byPod.delete(pod);
    await this.save();
    return 'deleted';
  }

  /** Forgets the sandboxes `isGone` says are (DEL missed while the agent was down); the
   *  removed ones are returned. */
  async prune(isGone: (s: Sandbox) => boolean): Promise<Sandbox[]> {
    const gone = this.all().filter(isGone);
    if (gone.length === 0) return [];
    for (const s of gone) this.byPod.delete(s.pod);
    await this.save();
    return gone;
  }

  private save(): Promise<void> {
    const text = `${JSON.stringify({ version: SANDBOXES_FILE_VERSION, sandboxes: this.all() })}\n`;
    const next = this.saving.then(() => writeFileAtomic(this.file, text));
    this.saving = next.catch(() => undefined);
    return next.catch((e: Error) => {
      throw new Error(`write sandboxes file ${this.file}: ${e.message}`);
    });
  }
}
