// The pod sandbox interfaces the agent learned from CNI ADD, keyed by (pod, interface
// name): with Multus a pod gets one ADD per network (eth0, net1, ...), each its own
// endpoint. For each: the current sandbox's container ID, its netns, the CNI network name,
// the host-side interface and the addresses of the interface plugin's result. A DEL for
// another container ID on that interface (the kubelet sends late DELs for sandboxes it
// already replaced) changes nothing. Kept in the agent's run directory
// (/run/netfence/<hash of the bpffs root>/sandboxes.json, written atomically), so a
// restarted agent enforces these pods again at its first pass, before it reports ready.
import fs from 'node:fs';
import path from 'node:path';
import { DEFAULT_RUN_DIR, namesFilePath } from './names-file';
import { writeFileAtomic } from './write-atomic';

export const SANDBOXES_FILE_VERSION = 2;
/** Version 1 (one sandbox per pod, no network) reads as is: its entries already name their interface. */
const READABLE_VERSIONS: readonly unknown[] = [1, SANDBOXES_FILE_VERSION];

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
  /** The CNI network's name (the netconf `name`); absent from plugins before it was sent. */
  network?: string;
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
  for (const f of ['pod', 'containerId', 'ifName', 'netns'])
    if (!isStr(o[f]) || o[f] === '') throw new Error(`${at}.${f}: must be a non-empty string`);
  if (!Array.isArray(o.ips) || !o.ips.every(isStr)) throw new Error(`${at}.ips: must be a list of strings`);
  if (o.network !== undefined && (!isStr(o.network) || o.network === ''))
    throw new Error(`${at}.network: must be a non-empty string`);
  const h = o.hostIf as Record<string, unknown> | undefined;
  if (h !== undefined && (!isStr(h?.name) || !Number.isInteger(h?.ifindex)))
    throw new Error(`${at}.hostIf: must be { name, ifindex }`);
  return {
    pod: o.pod as string,
    containerId: o.containerId as string,
    ifName: o.ifName as string,
    netns: o.netns as string,
    ...(o.network !== undefined && { network: o.network as string }),
    ...(h && { hostIf: { name: h.name as string, ifindex: h.ifindex as number } }),
    ips: o.ips,
  };
}

/** One endpoint per (pod, interface); pod names have no spaces. */
export const sandboxKey = (pod: string, ifName: string): string => `${pod} ${ifName}`;

export class Sandboxes {
  private readonly byKey = new Map<string, Sandbox>();
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
      if (!READABLE_VERSIONS.includes(saved.version))
        throw new Error(`version: expected ${READABLE_VERSIONS.join(' or ')}, got ${JSON.stringify(saved.version)}`);
      if (!Array.isArray(saved.sandboxes)) throw new Error('sandboxes: must be a list');
      const list = saved.sandboxes.map((s, i) => decodeSandbox(s, `sandboxes[${i}]`));
      this.byKey.clear();
      for (const s of list) this.byKey.set(sandboxKey(s.pod, s.ifName), s);
      return {};
    } catch (e) {
      return { warning: `load sandboxes file ${this.file}: ${(e as Error).message} (ignored)` };
    }
  }

  get(pod: string, ifName: string): Sandbox | undefined {
    return this.byKey.get(sandboxKey(pod, ifName));
  }

  all(): Sandbox[] {
    return [...this.byKey.values()];
  }

  get size(): number {
    return this.byKey.size;
  }

  /** ADD: the current sandbox of the pod's interface (replacing an older one); on disk when it resolves. */
  async set(s: Sandbox): Promise<void> {
    this.byKey.set(sandboxKey(s.pod, s.ifName), s);
    await this.save();
  }

  /** DEL: forgets the pod interface's sandbox only when `containerId` is its current one. */
  async delete(pod: string, ifName: string, containerId: string): Promise<DelOutcome> {
    const s = this.byKey.get(sandboxKey(pod, ifName));
    if (!s) return 'unknown';
    if (s.containerId !== containerId) return 'stale';
    this.byKey.delete(sandboxKey(pod, ifName));
    await this.save();
    return 'deleted';
  }

  /** Forgets the sandboxes `isGone` says are (DEL missed while the agent was down); the
   *  removed ones are returned. */
  async prune(isGone: (s: Sandbox) => boolean): Promise<Sandbox[]> {
    const gone = this.all().filter(isGone);
    if (gone.length === 0) return [];
    for (const s of gone) this.byKey.delete(sandboxKey(s.pod, s.ifName));
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
