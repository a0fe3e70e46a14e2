// Pod churn on a lab node: pods (a namespace each, a veth into the node, a /32 route, as a
// routed CNI sets them up) created and deleted at a steady rate, and each pod's enforcement
// watched from outside the agent: its nf_endpoints entry (under the pod's own ifindex, never
// reused, so no earlier pod's entry can pass for it; written once its hooks are attached) and
// the pins that record the hooks that entry needs (TCX link or clsact filter marker).
// Commands go through two long-lived `ip -batch` processes: a fork per command (~7 per
// pod) would cost more CPU than the agent under test. The pod side of each veth stays down
// (the agent needs only the host side and the route).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { decodeEndpoint, type Endpoint } from '../wire/endpoint';
import { encodeU32 } from '../wire/bytes';
import { hooksFor } from '../compile/hooks';
import { hookPins } from '../datapath/attach';
import { filtersDir, linksDir } from '../datapath/loader';
import type { NativeAddon } from '../datapath/native-api';
import { SYSTEM_ENV } from './exec';

/** A pod the state lists (with its address) that churn creates and deletes, over and over. */
export interface ChurnSlot {
  pod: string;
  ip: string;
}

export interface ChurnOptions {
  addon: NativeAddon;
  /** The node's netns (where the agent runs) and its agent's bpffs root. */
  nodeNetns: string;
  bpffsRoot: string;
  slots: readonly ChurnSlot[];
  /** Pods added per second; each lives `lifetimeMs`, so as many are deleted per second. */
  rate: number;
  seconds: number;
  lifetimeMs: number;
  /** Pod namespaces are named netnsPrefix + a sequence number (the lab's prefix, so `lab
   *  down` removes any left), host interfaces ifPrefix + it (15 characters at most). */
  netnsPrefix: string;
  ifPrefix: string;
  /** Whether an endpoint entry is the one the pod must get (e.g. it has an ingress table). */
  wanted: (ep: Endpoint) => boolean;
  /** How long a pod may take to be enforced or removed before it counts as never. */
  deadlineMs?: number;
  /** A process (the agent) whose CPU use over the churn window is reported. */
  cpuPid?: number;
}

/** One pod's life: times in ms from the churn's start (performance.now based). */
export interface ChurnPod {
  slot: number;
  ifname: string;
  ifindex: number;
  netns: string;
  added: number;
  /** When its entry and pins were first seen complete; never, if undefined. */
  enforced?: number;
  deleted?: number;
  /** When its entry and pins were first seen gone. */
  removed?: number;
}

export interface ChurnResult {
  pods: ChurnPod[];
  /** Interface appeared -> enforced, per pod enforced (ms). */
  enforceMs: number[];
  /** Veth deleted -> entry and pins gone, per pod enforced and then removed (ms). */
  removeMs: number[];
  notEnforced: ChurnPod[];
  notRemoved: ChurnPod[];
  /** What `ip -batch` reported failing (a pod not created as planned). */
  ipErrors: string[];
  /** The window pods were added in: its length, and its start and end (epoch ms). */
  seconds: number;
  window: { start: number; end: number };
  /** User + system CPU of `cpuPid` over the window, as % of one CPU. */
  cpuPercent?: number;
}

const POLL_MS = 2;
// Namespaces are made this long before their pod's veth (the two batches do not wait
// for each other), and this many slots ahead of the pod being added.
const NETNS_LEAD_MS = 150;
/** `ip` processes making and deleting the pod namespaces: each `netns add` or `netns del`
 *  takes 5-8 ms here, mostly waiting in the kernel, so one process falls behind 100 pods/s;
 *  four take ~2 ms a namespace. */
const NETNS_BATCHES = 4;
/** Pods whose veths one `ip` process makes before the next takes over (RecycledIpBatch). */
const NODE_BATCH_PODS = 10;
/** First ifindex of churned pods (the node's own links have small ones). */
const IFINDEX_BASE = 1_000_000;

/** A long-lived `ip [-n NETNS] -force -batch -`: lines in, failures collected from stderr. */
class IpBatch {
  private readonly child: ChildProcess;
  private readonly exited: Promise<void>;
  readonly errors: string[] = [];
  /** Some errors end `ip` even with -force (an invalid argument): nothing after them runs. */
  ended = false;

  constructor(netns?: string) {
    const args = [...(netns ? ['-n', netns] : []), '-force', '-batch', '-'];
    this.child = spawn('ip', args, { stdio: ['pipe', 'ignore', 'pipe'], env: SYSTEM_ENV });
    this.child.stdin!.on('error', () => undefined);
    let partial = '';
    this.child.stderr!.on('data', (d: Buffer) => {
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop()!;
      this.errors.push(...lines.filter((l) => l.trim() !== ''));
    });
    this.exited = new Promise((resolve) =>
      this.child.on('close', () => {
        this.ended = true;
        resolve();
      }),
    );
  }

  send(...lines: string[]): void {
    this.child.stdin!.write(lines.map((l) => `${l}\n`).join(''));
  }

  /** Ends its input (it exits at EOF) and waits; killed after 10 s. */
  async close(): Promise<void> {
    this.child.stdin!.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(t);
  }
}

/** Lines spread round-robin over several `ip -batch` processes (order kept within each). */
class IpPool {
  private readonly batches: IpBatch[];
  private next = 0;

  constructor(n: number) {
    this.batches = Array.from({ length: n }, () => new IpBatch());
  }

  get errors(): string[] {
    return this.batches.flatMap((b) => b.errors);
  }

  get ended(): boolean {
    return this.batches.some((b) => b.ended);
  }

  send(line: string): void {
    this.batches[this.next++ % this.batches.length].send(line);
  }

  async close(): Promise<void> {
    await Promise.all(this.batches.map((b) => b.close()));
  }
}

/** An `ip -n NETNS -batch` replaced by a new process every `perProcess` sends: iproute2
 *  (6.1) keeps the fd of every namespace a `netns NAME` argument named open until it
 *  exits, and that fd keeps a deleted pod's namespace, and so its veth, alive. */
class RecycledIpBatch {
  private readonly done: IpBatch[] = [];
  private current: IpBatch;
  private sends = 0;

  constructor(
    private readonly netns: string,
    private readonly perProcess: number,
  ) {
    this.current = new IpBatch(netns);
  }

  get errors(): string[] {
    return [...this.done, this.current].flatMap((b) => b.errors);
  }

  get ended(): boolean {
    return this.current.ended;
  }

  send(...lines: string[]): void {
    this.current.send(...lines);
    if (++this.sends % this.perProcess !== 0) return;
    // It exits once it has run what it was sent.
    void this.current.close();
    this.done.push(this.current);
    this.current = new IpBatch(this.netns);
  }

  async close(): Promise<void> {
    await Promise.all([...this.done, this.current].map((b) => b.close()));
  }
}

/** Runs the churn, then deletes every pod still there; resolves once each pod is seen
 *  enforced and removed or its deadline passed. */
export async function runChurn(o: ChurnOptions): Promise<ChurnResult> {
  const deadline = o.deadlineMs ?? 10_000;
  const endpoints = o.addon.mapOpenPinned(path.join(o.bpffsRoot, 'nf_endpoints'));
  const namespaces = new IpPool(NETNS_BATCHES);
  const node = new RecycledIpBatch(o.nodeNetns, NODE_BATCH_PODS);
  const pods: ChurnPod[] = [];
  const total = Math.round(o.rate * o.seconds);
  const slotOf = (seq: number): number => seq % o.slots.length;
  const podOf = (seq: number): Omit<ChurnPod, 'added'> => ({
    slot: slotOf(seq),
    ifname: `${o.ifPrefix}${seq.toString(36)}`,
    ifindex: IFINDEX_BASE + seq,
    netns: `${o.netnsPrefix}${seq.toString(36)}`,
  });
  const pinsOf = (p: ChurnPod, ep: Endpoint | null): boolean[] =>
    (ep ? hooksFor(ep) : (['ingress', 'egress'] as const)).map((d) => {
      const pins = hookPins(o.bpffsRoot, p.ifname, d);
      return fs.existsSync(pins.link) || fs.existsSync(pins.marker);
    });
  const entryOf = (p: ChurnPod): Endpoint | null => {
    const v = o.addon.mapLookup(endpoints.fd, encodeU32(p.ifindex));
    return v ? decodeEndpoint(v) : null;
  };
  const isEnforced = (p: ChurnPod): boolean => {
    const ep = entryOf(p);
    return ep !== null && o.wanted(ep) && pinsOf(p, ep).every(Boolean);
  };
  const isRemoved = (p: ChurnPod): boolean => entryOf(p) === null && !pinsOf(p, null).some(Boolean);

  const cpu = (): number | undefined => (o.cpuPid === undefined ? undefined : cpuSeconds(o.cpuPid));
  const t0 = performance.now();
  const now = (): number => performance.now() - t0;
  let prepared = 0;
  let added = 0;
  let deletedUpTo = 0;
  const lead = Math.ceil((o.rate * NETNS_LEAD_MS) / 1000);
  const prepare = (upTo: number): void => {
    for (; prepared < Math.min(upTo, total); prepared++) namespaces.send(`netns add ${podOf(prepared).netns}`);
  };
  const add = (): void => {
    const p: ChurnPod = { ...podOf(added), added: now() };
    // Its namespace is made `lead` pods earlier; a batch that fell behind is waited for.
    if (!netnsMounted(p.netns)) return;
    const ip = o.slots[p.slot].ip;
    node.send(
      `link add ${p.ifname} index ${p.ifindex} type veth peer name eth0 netns ${p.netns}`,
      `link set ${p.ifname} up`,
      `route add ${ip}/32 dev ${p.ifname}`,
    );
    pods.push(p);
    added++;
  };
  // The pod's namespace goes, and its veth with it: the kernel tears namespaces down in
  // batches (~1 ms a pod here), while each `ip link del` of a veth waits for its own RCU
  // grace period under the rtnl lock (~17 ms): 100 of those a second cannot be done.
  const remove = (p: ChurnPod): void => {
    p.deleted = now();
    namespaces.send(`netns del ${p.netns}`);
  };
  const poll = (): void => {
    const t = now();
    for (const p of pods) {
      if (p.enforced === undefined && t - p.added < deadline && isEnforced(p)) p.enforced = t;
      if (p.deleted !== undefined && p.removed === undefined && t - p.deleted < deadline && isRemoved(p)) p.removed = t;
    }
  };
  const settled = (p: ChurnPod, t: number): boolean =>
    (p.enforced !== undefined || t - p.added >= deadline) &&
    p.deleted !== undefined &&
    (p.removed !== undefined || t - p.deleted >= deadline);

  try {
    prepare(lead);
    await sleep(NETNS_LEAD_MS);
    const start = { epoch: Date.now(), t: now(), cpu: cpu() };
    // Each tick does what is due by now: adds at `rate`, deletes `lifetimeMs` after each add.
    while (added < total) {
      if (namespaces.ended || node.ended)
        throw new Error(`ip -batch exited early: ${[...namespaces.errors, ...node.errors].join('; ')}`);
      const due = Math.min(total, Math.floor(((now() - start.t) * o.rate) / 1000) + 1);
      while (added < due) {
        const before = added;
        add();
        if (added === before) break;
      }
      prepare(added + lead);
      for (; deletedUpTo < pods.length && now() - pods[deletedUpTo].added >= o.lifetimeMs; deletedUpTo++)
        remove(pods[deletedUpTo]);
      poll();
      await sleep(POLL_MS);
    }
    const seconds = (now() - start.t) / 1000;
    const end = { epoch: Date.now(), cpu: cpu() };
    for (; deletedUpTo < pods.length; deletedUpTo++) {
      while (now() - pods[deletedUpTo].added < o.lifetimeMs) {
        poll();
        await sleep(POLL_MS);
      }
      remove(pods[deletedUpTo]);
    }
    while (!pods.every((p) => settled(p, now()))) {
      poll();
      await sleep(POLL_MS);
    }
    const enforced = pods.filter((p) => p.enforced !== undefined);
    // Removal is timed for pods that were enforced (one never enforced has nothing to remove).
    const removed = enforced.filter((p) => p.removed !== undefined);
    return {
      pods,
      enforceMs: enforced.map((p) => p.enforced! - p.added),
      removeMs: removed.map((p) => p.removed! - p.deleted!),
      notEnforced: pods.filter((p) => p.enforced === undefined),
      notRemoved: pods.filter((p) => p.removed === undefined),
      ipErrors: [...namespaces.errors, ...node.errors],
      seconds,
      window: { start: start.epoch, end: end.epoch },
      ...(start.cpu !== undefined && end.cpu !== undefined && { cpuPercent: ((end.cpu - start.cpu) / seconds) * 100 }),
    };
  } finally {
    // Namespaces made ahead and never used.
    for (let seq = added; seq < prepared; seq++) namespaces.send(`netns del ${podOf(seq).netns}`);
    await Promise.all([namespaces.close(), node.close()]);
    o.addon.closeFd(endpoints.fd);
  }
}

/** Endpoint entries and hook pins of interfaces the node no longer has (leaks). */
export function leftovers(
  addon: NativeAddon,
  bpffsRoot: string,
  nodeLinks: readonly { name: string; ifindex: number }[],
): { entries: number[]; pins: string[] } {
  const endpoints = addon.mapOpenPinned(path.join(bpffsRoot, 'nf_endpoints'));
  try {
    const ifindexes = new Set(nodeLinks.map((l) => l.ifindex));
    const names = new Set(nodeLinks.map((l) => l.name));
    const entries = addon
      .mapKeys(endpoints.fd)
      .map((k) => k.readUInt32LE(0))
      .filter((i) => !ifindexes.has(i));
    const pins = [linksDir(bpffsRoot), filtersDir(bpffsRoot)].flatMap((dir) =>
      (fs.existsSync(dir) ? fs.readdirSync(dir) : [])
        .filter((f) => !names.has(f.replace(/-(ingress|egress)$/, '')))
        .map((f) => path.join(path.basename(dir), f)),
    );
    return { entries, pins };
  } finally {
    addon.closeFd(endpoints.fd);
  }
}

/** User + system CPU seconds a process has used so far (/proc/PID/stat, in USER_HZ = 100). */
export function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of stat(5): the 12th and 13th after "(comm) ".
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** `ip netns add` creates the file and then mounts the namespace on it: a name used in
 *  between is an invalid argument, which ends the batch. */
function netnsMounted(name: string): boolean {
  try {
    return fs.statSync(`/run/netns/${name}`).dev !== fs.statSync('/run/netns').dev;
  } catch {
    return false;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
