// The contract of the native addon (native/, node-addon-api over libbpf and libnl).
// The addon is thin: kernel objects in, Buffers out, no policy. Every failure throws
// a NativeError: message "verb object: cause", code = errno name (e.g. "ENOENT"),
// errno = number, syscall = failing call (e.g. "bpf_map_update_elem").

export interface NativeError extends Error {
  code: string;
  errno: number;
  syscall: string;
}

export interface MapInfo {
  name: string;
  fd: number;
  type: number; // BPF_MAP_TYPE_*
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  id: number;
  btfId: number;
}

/** A tc change on an interface that is still there that may have taken netfence's clsact
 *  filter (its clsact qdisc deleted: both hooks; a filter at netfence's priority deleted),
 *  or put another cls_bpf filter ahead of it (`filter-ahead`: added at its priority). */
export interface TcHookEvent {
  type: 'qdisc-del' | 'filter-del' | 'filter-ahead';
  ifindex: number;
  ifname: string;
  dirs: TcDirection[];
}

/** `overflow`: a burst of changes overflowed the watch socket; events were lost. */
export type LinkEvent =
  | { type: 'new' | 'del'; link: LinkInfo }
  | { type: 'route-new' | 'route-del'; family: 4 | 6 }
  | TcHookEvent
  | { type: 'overflow' };

export interface ProgInfo {
  name: string;
  fd: number;
  type: number;
  id: number;
}

export interface OpenObjectOptions {
  /** bpffs directory for maps declared with LIBBPF_PIN_BY_NAME; absent = no pinning. */
  pinRoot?: string;
  /** Override max_entries per map name before load. */
  maxEntries?: Record<string, number>;
  /** Set `const volatile` rodata knobs? Not used yet; reserved. */
}

export interface BpfObjectHandle {
  maps(): MapInfo[];
  programs(): ProgInfo[];
  /** Close the object (fds). Pinned maps and pinned links stay. */
  close(): void;
}

export interface TestRunOptions {
  data: Buffer;
  /** struct __sk_buff (or xdp_md) input context; absent = none. */
  ctx?: Buffer;
  ctxOutSize?: number;
  dataOutSize?: number; // default data.length + 256
  repeat?: number; // default 1
}

export interface TestRunResult {
  retval: number;
  data: Buffer;
  ctx?: Buffer;
  duration: number; // ns per run, as reported by the kernel
}

export type TcDirection = 'ingress' | 'egress';

export interface TcAttachResult {
  mode: 'tcx' | 'clsact';
  /** Where the TCX link was pinned (TCX links die with their last fd unless pinned). */
  linkPin?: string;
}

/** A clsact filter at netfence's handle. */
export interface TcFilter {
  priority: number;
  handle: number;
  progId: number;
  progName?: string;
}

export interface LinkInfo {
  ifindex: number;
  name: string;
  kind: string; // "veth", "loopback", "" ...
  mac: string;
  up: boolean;
  masterIfindex: number;
  linkIfindex: number; // peer (veth) ifindex in its netns, 0 if unknown
  linkNetnsid?: number; // the peer's netns as this one knows it; absent when the same (-1: going away)
}

/** An ARP (IPv4) or NDP (IPv6) entry with a link-layer address. */
export interface Neighbour {
  family: 4 | 6;
  ifindex: number;
  ip: string;
  mac: string;
  /** false while incomplete or failed (the MAC says nothing then) */
  valid: boolean;
}

/** A bridge forwarding-database entry: a MAC learned (or set) on a bridge port. */
export interface FdbEntry {
  /** the port */
  ifindex: number;
  /** the bridge (0 for a port device's own table) */
  masterIfindex: number;
  mac: string;
  vlan: number;
  /** the bridge's own address on the port (permanent), not a station behind it */
  local: boolean;
  /** the port device's own table (NTF_SELF), not the bridge's */
  self: boolean;
}

export interface RouteRule {
  family: 4 | 6;
  priority: number;
  mark?: number;
  mask?: number;
  table: number;
  protocol?: number; // owner tag (e.g. 0x4e for netfence), lets reconcile find its own rules
}

export interface Route {
  family: 4 | 6;
  table: number;
  dst: string; // "0.0.0.0/0", "10.244.1.5/32", "::/0"
  gateway?: string;
  oif?: number;
  protocol?: number;
  scope?: number;
}

/** One gateway liveness probe: an answer from the gateway itself, or why there was none. */
export interface GatewayProbeResult {
  answered: boolean;
  /** The request went out: unanswered, the gateway did not answer in time (otherwise the
   *  uplink or the route to the gateway is the cause). */
  sent: boolean;
  /** The gateway's MAC as it answered. */
  mac?: string;
  /** Why not: no answer within the timeout, the uplink down or without carrier, no route. */
  cause?: string;
}

export interface NativeAddon {
  openObject(path: string, opts: OpenObjectOptions): BpfObjectHandle;

  /** Open a pinned map or program; returns its fd and info. */
  mapOpenPinned(path: string): MapInfo;
  pin(fd: number, path: string): void;
  unpin(path: string): void;
  closeFd(fd: number): void;
  /** Create a standalone map (inner maps for map-of-maps, tests). */
  mapCreate(type: number, name: string, keySize: number, valueSize: number, maxEntries: number, flags: number): number;

  /** Per-CPU maps: value buffers are valueSize rounded up to 8 times the number of possible CPUs. */
  mapLookup(fd: number, key: Buffer): Buffer | null;
  mapUpdate(fd: number, key: Buffer, value: Buffer, flags?: number): void;
  mapDelete(fd: number, key: Buffer): boolean; // false when absent
  /** Keys and values: arrays of Buffers, or each one Buffer of its elements back to back. */
  mapUpdateBatch(fd: number, keys: Buffer[] | Buffer, values: Buffer[] | Buffer): void;
  mapDeleteBatch(fd: number, keys: Buffer[] | Buffer): number; // deleted count
  /** All keys (get_next_key walk). */
  mapKeys(fd: number): Buffer[];
  possibleCpus(): number;

  tcAttach(
    ifindex: number,
    dir: TcDirection,
    progFd: number,
    opts: { linkPin?: string; forceClsact?: boolean },
  ): TcAttachResult;
  /** Our clsact filter first again at its priority, ahead of cls_bpf filters added there
   *  after it (the kernel runs the newest first), with no moment without ours ahead. */
  tcMoveAhead(ifindex: number, dir: TcDirection, progFd: number, opts: { linkPin?: string }): void;
  tcDetach(ifindex: number, dir: TcDirection, opts: { linkPin?: string }): void;
  /** Program id attached at the hook through netfence (TCX pinned link or clsact filter), 0 if none. */
  tcQuery(ifindex: number, dir: TcDirection, opts: { linkPin?: string }): number;
  /** The clsact filters at netfence's places (ours, a move ahead's spare, an older agent's)
   *  with the program each runs (progName absent if the program is gone meanwhile). */
  tcFilters(ifindex: number, dir: TcDirection): TcFilter[];
  /** Remove the filter at this priority and handle (a TcFilter's; others are refused). */
  tcFilterDelete(ifindex: number, dir: TcDirection, priority: number, handle: number): void;
  xdpAttach(ifindex: number, progFd: number, flags: number): void;
  xdpDetach(ifindex: number, flags: number): void;

  progTestRun(progFd: number, opts: TestRunOptions): TestRunResult;
  /** BPF_ENABLE_STATS (run time): the kernel counts program runs while the fd is open (closeFd). */
  enableRunStats(): number;
  /** Runs and their total time of the program with this id since it was loaded, counted while stats were on. */
  progRunStats(id: number): { runCnt: number; runTimeNs: number };

  /** Ring buffer consumer: uv_poll on ring_buffer__epoll_fd(); samples copied out during the callback. */
  ringBufferOpen(mapFd: number, onSample: (sample: Buffer) => void): { close(): void };

  linkList(): LinkInfo[];
  linkByName(name: string): LinkInfo | null;
  /** MAC of a veth's peer, also in another netns (asked by nsid, no setns): one query with
   *  what linkList found of the veth; null if not a veth or gone. */
  linkPeerMac(link: Pick<LinkInfo, 'kind' | 'linkIfindex' | 'linkNetnsid'>): string | null;
  /** Global addresses of a veth's peer (a pod's interface), also in another netns (one
   *  dump by nsid, no setns); empty if not a veth or gone. */
  linkPeerAddrs(link: Pick<LinkInfo, 'kind' | 'linkIfindex' | 'linkNetnsid'>): string[];
  /** Subscribe to RTM_NEWLINK/DELLINK, to main-table host routes (/32, /128) coming
   *  and going and to tc changes on clsact hooks (TcHookEvent); delivered on the
   *  event loop; `overflow` when some were lost. */
  linkWatch(onEvent: (ev: LinkEvent) => void): { close(): void };
  /** The neighbour tables (ARP and NDP) of this netns. */
  neighList(): Neighbour[];
  /** The bridge forwarding databases of this netns. */
  fdbList(): FdbEntry[];

  ruleList(family: 4 | 6): RouteRule[];
  ruleAdd(rule: RouteRule): void; // EEXIST tolerated
  ruleDelete(rule: RouteRule): void; // ENOENT tolerated
  routeList(family: 4 | 6, table: number): Route[];
  routeReplace(route: Route): void;
  routeDelete(route: Route): void; // ENOENT tolerated

  /** One ARP request (family 4) or neighbour solicitation (6) to `address` out of `ifname`
   *  (socket opened in the calling thread's netns), resolved when the gateway answers or
   *  after `timeoutMs`; a link down, without carrier or without a route resolves unanswered. */
  gatewayProbe(ifname: string, family: 4 | 6, address: string, timeoutMs: number): Promise<GatewayProbeResult>;

  /** unshare(CLONE_NEWNET) for the calling thread (tests: a private netns for the process). */
  unshareNet(): void;
  /** setns into the netns at path (e.g. /run/netns/x). */
  setNetns(path: string): void;

  /** mount -t bpf bpf <target> -o mode=0700. */
  mountBpffs(target: string): void;
  /** flock(LOCK_EX|LOCK_NB) on a new fd of path; returns the fd that holds the lock
   *  (code EWOULDBLOCK when another open file holds it). */
  flockExclusive(path: string): number;
  /** After SIGTERM or SIGINT, the process ends (exit code 128 + signal) within deadlineMs
   *  even if the JS thread is blocked; JS handlers that exit first win. Arm once, after
   *  process.on() installed them. */
  exitAfterSignal(deadlineMs: number): void;
}
