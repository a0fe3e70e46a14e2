// A small libcni equivalent for tests: runs a conflist's plugins the way container runtimes
// do through libcni (CNI spec 1.0/1.1): ADD runs every plugin in order, each given the
// previous plugin's result as prevResult; the final result is cached per (container ID,
// interface); CHECK runs every plugin in order with the cached result; DEL runs them in
// reverse order with the cached result; STATUS (1.1) asks every plugin. The plugins run
// inside the node's network namespace (nsenter: only the netns changes, so the agent's unix
// socket and the pins stay visible), never in the root namespace.
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';

/** Creates named network namespaces; the returned function deletes them (those still there). */
export function createNetns(names: string[]): () => void {
  for (const ns of names) execFileSync('ip', ['netns', 'add', ns]);
  return () => {
    for (const ns of names) {
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        /* already gone */
      }
    }
  };
}

/** Where Debian's containernetworking-plugins installs the reference plugins. */
export const REFERENCE_PLUGINS_DIR = '/usr/lib/cni';

export interface NetConfList {
  cniVersion: string;
  name: string;
  plugins: Record<string, unknown>[];
}

export interface RuntimeConf {
  containerId: string;
  /** The sandbox's netns path (/run/netns/NAME). */
  netns: string;
  ifName: string;
  /** CNI_ARGS pairs; the kubelet passes K8S_POD_NAMESPACE, K8S_POD_NAME, K8S_POD_INFRA_CONTAINER_ID. */
  args?: Record<string, string>;
}

export interface PodRef {
  namespace: string;
  name: string;
}

/** The CNI_ARGS a kubelet passes for a pod sandbox. */
export function kubeletArgs(pod: PodRef, containerId: string): Record<string, string> {
  return {
    IgnoreUnknown: '1',
    K8S_POD_NAMESPACE: pod.namespace,
    K8S_POD_NAME: pod.name,
    K8S_POD_INFRA_CONTAINER_ID: containerId,
  };
}

/** A plugin's error result (exit status non-zero, JSON on stdout). */
export class CniError extends Error {
  constructor(
    readonly plugin: string,
    readonly command: string,
    readonly code: number | undefined,
    readonly msg: string,
    readonly details: string,
    readonly stderr: string,
  ) {
    super(
      `${plugin} ${command}: ${msg}${details ? ` (${details})` : ''}${code !== undefined ? ` [code ${code}]` : ''}`,
    );
    this.name = 'CniError';
  }
}

export interface Invocation {
  plugin: string;
  command: string;
  ms: number;
}

export interface ExecOptions {
  /** Netns (path) the plugins run in: the node's. */
  nodeNetns: string;
  /** CNI_PATH: where plugin binaries are looked up, in order. */
  path: string[];
  /** Extra environment (e.g. NETFENCE_SOCKET for netfence-cni). */
  env?: Record<string, string>;
  timeoutMs?: number;
}

/** Runs one plugin binary with a command, config on stdin; returns its parsed stdout. */
export function execPlugin(
  opts: ExecOptions,
  type: string,
  command: string,
  config: unknown,
  rt?: RuntimeConf,
): Promise<{ result: unknown; ms: number }> {
  const binary = opts.path
    .map((dir) => `${dir}/${type}`)
    .find((p) => fs.statSync(p, { throwIfNoEntry: false })?.isFile());
  if (!binary) return Promise.reject(new Error(`find plugin ${type}: not in ${opts.path.join(':')}`));
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: command,
    CNI_PATH: opts.path.join(':'),
    ...(rt && {
      CNI_CONTAINERID: rt.containerId,
      CNI_NETNS: rt.netns,
      CNI_IFNAME: rt.ifName,
      CNI_ARGS: Object.entries(rt.args ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(';'),
    }),
    ...opts.env,
  };
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = execFile(
      'nsenter',
      [`--net=${opts.nodeNetns}`, binary],
      { env, timeout: opts.timeoutMs ?? 30_000, maxBuffer: 1 << 20 },
      (err, stdout, stderr) => {
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        const parsed = parseJson(stdout);
        if (err) {
          const e = (parsed ?? {}) as { code?: number; msg?: string; details?: string };
          reject(new CniError(type, command, e.code, e.msg ?? (err.message || 'failed'), e.details ?? '', stderr));
          return;
        }
        resolve({ result: parsed, ms });
      },
    );
    // A plugin may exit before it reads its config (an early error): the callback reports
    // its outcome, the broken pipe is not a second one.
    child.stdin?.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') reject(e);
    });
    child.stdin?.end(JSON.stringify(config));
  });
}

/** Numeric comparison of "a.b.c" versions. */
export function versionAtLeast(v: string, min: string): boolean {
  const [a, b] = [v, min].map((s) => s.split('.').map(Number));
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  return true;
}

function parseJson(text: string): unknown {
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** A network configuration list run as libcni runs it. */
export class CniChain {
  /** Cached final ADD results by "containerId/ifName" (libcni's result cache). */
  private readonly cache = new Map<string, unknown>();
  /** Every plugin invocation, in order, with its duration. */
  readonly invocations: Invocation[] = [];

  constructor(
    readonly list: NetConfList,
    private readonly opts: ExecOptions,
  ) {}

  /** The config a plugin gets: its entry plus the list's name and version (and prevResult). */
  private config(plugin: Record<string, unknown>, prevResult?: unknown): Record<string, unknown> {
    return {
      ...plugin,
      cniVersion: this.list.cniVersion,
      name: this.list.name,
      ...(prevResult !== undefined && { prevResult }),
    };
  }

  private async run(
    plugin: Record<string, unknown>,
    command: string,
    prevResult: unknown,
    rt?: RuntimeConf,
  ): Promise<unknown> {
    const type = String(plugin.type);
    const { result, ms } = await execPlugin(this.opts, type, command, this.config(plugin, prevResult), rt);
    this.invocations.push({ plugin: type, command, ms });
    return result;
  }

  private key(rt: RuntimeConf): string {
    return `${rt.containerId}/${rt.ifName}`;
  }

  cached(rt: RuntimeConf): unknown {
    return this.cache.get(this.key(rt));
  }

  async add(rt: RuntimeConf): Promise<unknown> {
    let prev: unknown;
    for (const p of this.list.plugins) prev = await this.run(p, 'ADD', prev, rt);
    this.cache.set(this.key(rt), prev);
    return prev;
  }

  async check(rt: RuntimeConf): Promise<void> {
    const cached = this.cached(rt);
    if (cached === undefined) throw new Error(`check ${this.key(rt)}: no cached result`);
    for (const p of this.list.plugins) await this.run(p, 'CHECK', cached, rt);
  }

  /** DEL in reverse order with the cached result; the cache entry goes even on error, as libcni's. */
  async del(rt: RuntimeConf): Promise<void> {
    const cached = this.cached(rt);
    try {
      for (const p of [...this.list.plugins].reverse()) await this.run(p, 'DEL', cached, rt);
    } finally {
      this.cache.delete(this.key(rt));
    }
  }

  /** CNI 1.1 STATUS: every plugin, no runtime conf; nothing for older lists, as libcni. */
  async status(): Promise<void> {
    if (!versionAtLeast(this.list.cniVersion, '1.1.0')) return;
    for (const p of this.list.plugins) await this.run(p, 'STATUS', undefined);
  }
}
