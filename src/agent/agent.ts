// The agent: snapshot source (state directory or Kubernetes API) -> endpoints -> compile
// -> reconcile, on every new snapshot, on interface events and periodically. Nothing is
// enforced before the source's first complete snapshot; bad input rejects only the bad
// objects, each keeping its last valid version enforced (model/last-good). Pins (maps,
// TCX links) outlive the process, so SIGTERM, kill -9 and restarts never open or drop
// traffic; a new agent adopts what is pinned, and the last valid versions from the
// last-good file, so a version rejected before the restart stays replaced after it.
// CNI ADD/DEL are keyed by sandbox interface (agent/sandboxes): per (pod, CNI_IFNAME) the
// current container ID, network, host interface and addresses, kept on disk so a restart
// enforces them again; eth0 is the pod's primary endpoint, others secondary networks.
import fs from 'node:fs';
import type { Logger } from 'pino';
import { Compiler } from '../compile';
import type { CompileResult } from '../compile/output';
import { decodeEvent } from '../wire/events';
import { TcAttacher } from '../datapath/attach';
import {
  finishMigration,
  loadDatapath,
  mapFd,
  pruneProgramPins,
  readConfig,
  updateConfig,
  type Datapath,
} from '../datapath/loader';
import type { LinkInfo, NativeAddon } from '../datapath/native-api';
import { discoverEndpoints, readNetView } from '../endpoints/discover';
import { PeerMacs } from '../endpoints/peer-macs';
import type { Family } from '../model/ip';
import { LastGood } from '../model/last-good';
import { formatValidationError } from '../model/snapshot';
import type { Capacity, Snapshot } from '../model/types';
import type { ReconcileReport } from '../reconcile/report';
import { NativeMapIO } from '../reconcile/native-mapio';
import { Reconciler } from '../reconcile/reconciler';
import { pruneRuleStats } from '../reconcile/rule-stats';
import { GatewayMonitor, type GatewayState } from '../redirect/gateway-monitor';
import { ensureTunnel, removeTunnel, tunnelGateways, TUNNEL_OFF } from '../redirect/tunnel';
import type { SnapshotSource } from '../sources/source';
import type { CniRequest } from '../cni/protocol';
import { prevResultIps } from './cni-ips';
import { FlowFeed } from './flow-feed';
import { RateLimiter, flowContext, isolationNames, toFlow, type FlowContext } from './flows';
import { HookRepairs, type LostHook } from './hook-repairs';
import { KnownHooks } from './known-hooks';
import { LastGoodFile, lastGoodFilePath } from './last-good-file';
import { RpFilterRecord, rpFilterRecordPath } from './rp-filter-record';
import { AgentMetrics } from './metrics';
import { LatestWrite } from './latest-write';
import { LinkFollowUps } from './link-follow-ups';
import { once } from './once';
import { PassRequests } from './pass-requests';
import { namesFilePath, namesFromCompile, writeNamesFile, type NamesFile } from './names-file';
import { UnsupportedLayoutError, hostInterfaceOf } from './sandboxes-hostif';
import { PRIMARY_IFNAME, applySandboxes, type SandboxEndpoint } from './sandbox-networks';
import { Sandboxes, sandboxKey, sandboxesFilePath, type HostInterface, type Sandbox } from './sandboxes';

export interface AgentOptions {
  /** Where snapshots come from; the agent starts and stops it. */
  source: SnapshotSource;
  nodeName: string;
  /** bpffs directory of the pins (read once at start: it cannot follow the config). */
  bpffsRoot: string;
  objectPath?: string;
  /** Map capacities (read once at start, like bpffsRoot; default: defaultCapacity()). */
  capacity?: Capacity;
  sysfsRoot?: string;
  /** procfs root of the tunnel's sysctls (default /proc; a container mounts the node's
   *  /proc/sys/net elsewhere: runtimes refuse mounts inside /proc). */
  procRoot?: string;
  /** Periodic pass over the latest snapshot that reads the maps back (repairs drift in
   *  the kernel; other passes diff against the last applied state). */
  resyncMs?: number;
  flowLogsPerSecond?: number;
}

export interface AgentStatus {
  /** A state applied, and no hook of an endpoint known gone (see `unhooked`). */
  ready: boolean;
  generation: number;
  /** Version (SnapshotSource) of the applied state: the state directory's content hash,
   *  or a hash of the API objects' resourceVersions. */
  stateHash?: string;
  node: string;
  endpoints: number;
  failed: ReconcileReport['failed'];
  /** Hooks removed behind the agent's back and not back yet: their endpoints are not enforced. */
  unhooked: LostHook[];
  errors: string[];
  /** `enabled`: on for at least one family; `off`: the families with a configured gateway
   *  that flow directly (their gateway fails); `since`: when either last changed;
   *  `gateways`: the liveness of each probed gateway. */
  tunnel?: { mode: string; enabled: boolean; off: Family[]; error?: string; since?: string; gateways?: GatewayState[] };
  lastApply?: string;
}

/** A pass that threw is run again after this long (not at once: it may throw again). */
const PASS_RETRY_MS = 200;

export class Agent {
  readonly metrics: AgentMetrics;
  /** Every drop event, for `netfence flows` clients (the agent is the ring buffer's only reader). */
  readonly flowFeed: FlowFeed;
  private dp?: Datapath;
  private namesFile?: string;
  /** The names file's content is made when its write starts: under pod churn most passes'
   *  names are replaced before their turn, and making them was ~15 % of a pass. */
  private readonly namesWrite = new LatestWrite<() => NamesFile>(async (names) => {
    try {
      await writeNamesFile(this.namesFile!, names());
    } catch (e) {
      this.fail('names', `write names file ${this.namesFile}: ${(e as Error).message}`);
    }
  });
  private attacher?: TcAttacher;
  /** The attacher passes use: remembers the hooks it attached (forgotten at resync). */
  private hooks?: KnownHooks;
  /** Hooks the link watcher saw removed by another tool, until passes put them back. */
  private repairs?: HookRepairs;
  /** A pass applied a state (readiness also needs every hook in place). */
  private applied = false;
  /** Veth peer MACs discovery asked for (forgotten at resync, like the hooks). */
  private readonly peerMacs = new PeerMacs();
  /** Diffs against the last applied state; reads the pinned maps at the first pass,
   *  on resync and after a failure. */
  private reconciler?: Reconciler;
  /** The source's newest snapshot, rejected objects at their last valid version
   *  (applied or not: passes retry it). */
  private latest?: { snapshot: Snapshot; version: string };
  private lastGood = new LastGood();
  private lastGoodFile?: LastGoodFile;
  private rpFilter?: RpFilterRecord;
  /** The newest snapshot's validation errors, listed by every pass while they last. */
  private invalid: string[] = [];
  /** The errors of the last finished pass, and those of the pass running: an error is
   *  counted and logged at error level when it appears, not on every pass while it lasts. */
  private lastErrors = new Set<string>();
  private passErrors = new Set<string>();
  /** The newest snapshot's warnings (skipped kinds), logged once when they appear. */
  private warnings = new Set<string>();
  /** Pod sandboxes from CNI ADD (loaded at start: enforced again by the first pass). */
  private sandboxes?: Sandboxes;
  /** Why CNI ADD found no host interface for a pod interface, by sandboxKey (route
   *  discovery is tried then). */
  private readonly hostIfErrors = new Map<string, string>();
  /** What each sandbox interface is (primary, secondary network, or why unknown), by
   *  sandboxKey, as the last pass resolved it. */
  private sandboxEndpoints = new Map<string, SandboxEndpoint>();
  /** The last pass's discovery warnings: why pods of this node have no endpoint. */
  private discoveryWarnings: string[] = [];
  private compiled?: CompileResult;
  /** Keeps per-pod, per-policy and per-table work between passes (a pod add is O(1)). */
  private readonly compiler = new Compiler();
  /** What names drop events: made at the first event after a pass. */
  private flowCtx?: () => FlowContext;
  private appliedHash?: string;
  private running = false;
  private again = false;
  private stopped = false;
  private readonly closers: (() => void)[] = [];
  private scheduled?: NodeJS.Timeout;
  private readonly passes = new PassRequests((reason) => void this.apply(reason));
  private readonly followUps = new LinkFollowUps((reason) => this.request(reason));
  private readonly flowLimiter: RateLimiter;
  /** Probes the tunnel's gateways while the tunnel is wanted; a change runs a pass. */
  private readonly gateways: GatewayMonitor;
  readonly status: AgentStatus;

  constructor(
    private readonly addon: NativeAddon,
    private readonly opts: AgentOptions,
    private readonly log: Logger,
  ) {
    this.status = {
      ready: false,
      generation: 0,
      node: opts.nodeName,
      endpoints: 0,
      failed: [],
      unhooked: [],
      errors: [],
    };
    this.flowLimiter = new RateLimiter(opts.flowLogsPerSecond ?? 50);
    this.flowFeed = new FlowFeed((backlog) => log.warn({ backlog }, 'flows client cut off: it does not keep up'));
    this.metrics = new AgentMetrics({ addon, maps: () => this.dp?.maps, compiled: () => this.compiled });
    this.gateways = new GatewayMonitor(addon, (g) =>
      this.schedule(`gateway ${g.address} ${g.answering ? 'answers' : 'silent'}`),
    );
  }

  /** Load the datapath (adopting pins), then follow the source: the first pass runs
   *  when its first (complete) snapshot arrives. */
  async start(): Promise<void> {
    const root = this.opts.bpffsRoot;
    const loadStart = Date.now();
    this.log.info({ bpffsRoot: root }, 'loading datapath');
    this.dp = loadDatapath(this.addon, {
      bpffsRoot: root,
      objectPath: this.opts.objectPath,
      capacity: this.opts.capacity,
    });
    if (this.dp.migration) this.log.warn({ reason: this.dp.migration.reason }, 'migrating pinned datapath state');
    this.attacher = new TcAttacher(this.addon, root, this.dp);
    this.hooks = new KnownHooks(this.attacher);
    this.repairs = new HookRepairs(this.attacher, this.hooks, this.metrics.hookRepairs, this.log, (reason) => {
      this.refreshReady();
      this.schedule(reason);
    });
    this.reconciler = new Reconciler(new NativeMapIO(this.addon, this.dp.maps), this.hooks);
    this.namesFile = namesFilePath(root);
    this.rpFilter = new RpFilterRecord(rpFilterRecordPath(root), this.opts.procRoot);
    // Before the first snapshot is merged: its rejected objects keep the versions saved.
    this.lastGoodFile = new LastGoodFile(lastGoodFilePath(root));
    const { store, warning } = this.lastGoodFile.load();
    if (warning) this.log.warn(warning);
    this.lastGood = store;
    this.sandboxes = new Sandboxes(sandboxesFilePath(root));
    const loaded = this.sandboxes.load();
    if (loaded.warning) this.log.warn(loaded.warning);
    else if (this.sandboxes.size > 0)
      this.log.info({ sandboxes: this.sandboxes.size, file: this.sandboxes.file }, 'CNI sandboxes loaded');
    if (!this.dp.adopted && !this.dp.migration) {
      // A new object over compatible maps: every hook moves to it (atomic link update).
      this.attacher.switchPrograms(this.dp);
      pruneProgramPins(this.dp);
    }
    this.log.info(
      {
        bpffsRoot: root,
        node: this.opts.nodeName,
        object: this.dp.objectHash,
        adopted: this.dp.adopted,
        ms: Date.now() - loadStart,
      },
      this.dp.adopted ? 'datapath adopted from pins' : 'datapath loaded',
    );

    const rb = this.addon.ringBufferOpen(mapFd(this.dp, 'nf_events'), (s) => this.onEvent(s));
    this.closers.push(() => rb.close());
    const lw = this.addon.linkWatch((ev) => {
      if ('link' in ev) this.onLink(ev.type, ev.link.name);
      else if ('dirs' in ev) this.repairs!.onEvent(ev);
      else if (ev.type === 'overflow') {
        // Lost events may have been new links or hooks removed: everything is asked
        // again, and passes follow up as after a new link.
        this.forgetKernelState();
        this.followUps.schedule('link events lost (netlink overflow)');
      } else this.schedule(`host route ${ev.type.slice(6)}`);
    });
    this.closers.push(() => lw.close());
    this.closers.push(() => this.repairs!.close());
    this.closers.push(() => this.gateways.stop());
    const timer = setInterval(() => {
      this.forgetKernelState();
      this.schedule('resync');
    }, this.opts.resyncMs ?? 30_000);
    this.closers.push(() => clearInterval(timer));
    await this.opts.source.start((snapshot, version) => {
      this.latest = { snapshot: this.validate(snapshot), version };
      this.schedule('snapshot');
    });
    this.closers.push(() => void this.opts.source.stop());
  }

  /** The next pass reads the maps and asks about every hook again (repairs drift). */
  private forgetKernelState(): void {
    this.reconciler?.verify();
    this.hooks?.verify();
    this.peerMacs.forget();
  }

  /** Ready once a state is applied, and while no endpoint's hook is known gone. */
  private refreshReady(): void {
    this.status.unhooked = this.repairs!.list();
    this.status.ready = this.applied && this.status.unhooked.length === 0;
  }

  /** Stop following changes; enforcement (pins) stays. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.scheduled);
    for (const c of this.closers.splice(0)) c();
    this.flowFeed.close();
    this.dp?.close();
  }

  private schedule(reason: string, delayMs = 0): void {
    if (this.stopped) return;
    clearTimeout(this.scheduled);
    this.scheduled = setTimeout(() => this.request(reason), delayMs);
  }

  private onLink(type: 'new' | 'del', name: string): void {
    this.log.debug({ type, link: name }, 'link event');
    // Carrier or admin state of the uplink: probe now rather than at the next interval.
    if (name === this.latest?.snapshot.config.redirect?.uplink) this.gateways.poke();
    if (type === 'new') this.followUps.schedule(`link new ${name}`, name);
    else this.request(`link del ${name}`);
  }

  private request(reason: string): void {
    if (!this.stopped) this.passes.request(reason);
  }

  /** One pass; passes never overlap (a request during a pass runs once more after it). */
  async apply(reason: string): Promise<ReconcileReport | undefined> {
    if (this.stopped) return undefined;
    if (this.running) {
      this.again = true;
      return undefined;
    }
    this.running = true;
    try {
      return await this.pass(reason);
    } catch (e) {
      // Pins keep enforcing what the last pass left; the next pass starts over from the
      // kernel's state (the maps and hooks are read again).
      this.fail('pass', `pass (${reason}): ${(e as Error).message}`);
      this.forgetKernelState();
      this.schedule(`retry: ${reason}`, PASS_RETRY_MS);
      return undefined;
    } finally {
      this.running = false;
      if (this.again && !this.stopped) {
        this.again = false;
        this.request('queued');
      }
    }
  }

  /** Merges a source snapshot with the last valid objects; errors are logged and counted
   *  once, when they appear, not on every pass (warnings logged once too). */
  private validate(s: Snapshot): Snapshot {
    const { snapshot, kept } = this.lastGood.merge(s);
    const errors = s.errors.map(formatValidationError);
    const known = new Set(this.invalid);
    for (const e of errors.filter((x) => !known.has(x))) {
      this.metrics.errors.inc({ stage: 'validate' });
      this.log.error({ stage: 'validate' }, e);
    }
    for (const key of kept)
      this.log.warn(`keep enforcing the last valid version of ${key}: the current one is rejected`);
    for (const w of s.warnings.filter((x) => !this.warnings.has(x))) this.log.warn({ stage: 'validate' }, w);
    this.warnings = new Set(s.warnings);
    this.invalid = errors;
    return snapshot;
  }

  private fail(stage: string, message: string, level: 'error' | 'warn' = 'error'): void {
    this.status.errors.push(message);
    this.passErrors.add(message);
    if (this.lastErrors.has(message)) return;
    this.metrics.errors.inc({ stage });
    this.log[level]({ stage }, message);
  }

  private async pass(reason: string): Promise<ReconcileReport | undefined> {
    const dp = this.dp!;
    const generation = this.status.generation;
    const endTimer = this.metrics.reconcileSeconds.startTimer();
    this.status.errors = [...this.invalid];
    this.passErrors = new Set();
    if (!this.latest) {
      endTimer();
      return undefined;
    }
    const hash = this.latest.version;
    const started = performance.now();
    const view = readNetView(this.addon, this.peerMacs);
    const {
      snapshot: snap,
      cniInterfaces,
      endpoints: sandboxEndpoints,
    } = await this.withSandboxes(this.latest.snapshot, view.links);
    this.sandboxEndpoints = sandboxEndpoints;
    const discovery = discoverEndpoints(view, snap, {
      nodeName: this.opts.nodeName,
      hostInterfaces: snap.config.hostInterfaces,
      sysfsRoot: this.opts.sysfsRoot ?? '/sys',
      cniInterfaces,
    });
    // A pod of this node with addresses but no interface is a pod not enforced; so is a
    // sandbox interface whose network is not known.
    const unresolved = [...sandboxEndpoints.values()].flatMap((e) => ('error' in e ? [e.error] : []));
    this.discoveryWarnings = [...discovery.warnings, ...unresolved];
    for (const w of this.discoveryWarnings) this.fail('discover', w, 'warn');

    const endCompile = this.metrics.compileSeconds.startTimer();
    const result = this.compiler.compile(snap, this.opts.nodeName, discovery.endpoints);
    endCompile();
    // A refused endpoint is reported with what enforces it instead, under `failed`.
    const refused = new Set(result.endpoints.flatMap((e) => (e.refused ? [e.refused.error] : [])));
    for (const e of result.errors) if (!refused.has(e)) this.fail('compile', e);

    // Tunnel: routes before the flag, the flag off before routes go.
    const redirect = snap.config.redirect;
    const wantTunnel = redirect !== undefined && result.endpoints.some((e) => e.tunnel);
    let tunnel: { enabled: boolean; off: Family[]; error?: string; gateways?: GatewayState[] } = {
      enabled: false,
      off: [],
    };
    if (wantTunnel) {
      const gateways = await this.gateways.follow(redirect.uplink, tunnelGateways(redirect));
      await this.rpFilter!.remember(redirect.uplink).catch((e: Error) =>
        this.fail('tunnel', `record rp_filter of ${redirect.uplink}: ${e.message}`, 'warn'),
      );
      const t = ensureTunnel(this.addon, redirect, gateways, { procRoot: this.opts.procRoot });
      tunnel = { enabled: t.patch.flags !== 0, off: t.off, error: t.error, gateways };
      if (t.error) this.fail('tunnel', t.error);
      updateConfig(this.addon, dp, { ...t.patch, eventsPerSec: snap.config.eventsPerSecond });
      removeTunnel(this.addon, redirect.table, t.unroute);
    } else {
      this.gateways.stop();
      updateConfig(this.addon, dp, { ...TUNNEL_OFF, eventsPerSec: snap.config.eventsPerSecond });
      try {
        this.rpFilter!.restoreAll();
      } catch (e) {
        this.fail('tunnel', `put rp_filter back: ${(e as Error).message}`, 'warn');
      }
    }

    const ifindexes = new Map(view.links.map((l) => [l.name, l.ifindex]));
    const report = this.reconciler!.apply(result.maps, result.endpoints, result.isolation, ifindexes);
    if (!wantTunnel) removeTunnel(this.addon, redirect?.table);
    for (const f of report.failed) this.fail('endpoint', f.error);
    if (report.retiredRuleKeys.length > 0) {
      try {
        pruneRuleStats(this.addon, mapFd(dp, 'nf_rule_stats'), report.retiredRuleKeys);
      } catch (e) {
        this.fail('stats', `prune nf_rule_stats: ${(e as Error).message}`);
      }
    }
    this.status.failed = report.failed;
    this.tunnelStatus(redirect?.mode, tunnel);
    if (!report.ok) {
      this.fail('apply', report.error ?? 'apply failed');
    } else {
      if (report.error) this.fail('apply', report.error);
      if (dp.migration) {
        const carried = finishMigration(this.addon, dp, () => this.attacher!.switchPrograms(dp));
        this.log.info({ carried }, 'migration finished: hooks switched, old pins replaced');
      }
      // Before /readyz reports this state: a restart from here on keeps its last valid versions.
      const file = this.lastGoodFile!.file;
      await this.lastGoodFile!.save(this.lastGood).catch((e: Error) =>
        this.fail('last-good', `write last-good file ${file}: ${e.message}`),
      );
      this.compiled = result;
      if (hash !== this.appliedHash) {
        this.appliedHash = hash;
        this.status.generation++;
        this.metrics.generation.set(this.status.generation);
      }
      this.status.stateHash = this.appliedHash;
      this.applied = true;
      this.status.endpoints = result.endpoints.length - report.failed.length;
      const failed = new Set(report.failed.map((f) => f.ifname));
      this.followUps.passed(
        started,
        new Set(ifindexes.keys()),
        new Set(result.endpoints.flatMap((e) => (failed.has(e.ifname) ? [] : [e.ifname]))),
      );
      this.metrics.endpoints.set(this.status.endpoints);
      // For `netfence inspect` and `netfence flows` (names the maps cannot hold).
      const meta = { bpffsRoot: dp.root, node: this.opts.nodeName, generation: this.status.generation };
      const isolation = once(() => isolationNames(snap, result));
      this.flowCtx = once(() => flowContext(snap, result, isolation()));
      this.namesWrite.queue(() => namesFromCompile(result, snap, meta, isolation()));
    }
    this.repairs!.settle();
    this.refreshReady();
    this.status.lastApply = new Date().toISOString();
    this.lastErrors = this.passErrors;
    const seconds = endTimer();
    const changed =
      Object.keys(report.updates).length + Object.keys(report.deletes).length > 0 ||
      report.detached.length > 0 ||
      this.status.generation !== generation;
    this.log[changed || !report.ok ? 'info' : 'debug'](
      {
        reason,
        generation: this.status.generation,
        mapsRead: report.read,
        updates: report.updates,
        deletes: report.deletes,
        programmed: report.programmed,
        detached: report.detached,
        failed: report.failed.length,
        seconds,
        config: readConfig(this.addon, dp).flags,
      },
      'reconciled',
    );
    return report;
  }

  private tunnelStatus(
    mode: string | undefined,
    t: { enabled: boolean; off: Family[]; error?: string; gateways?: GatewayState[] },
  ): void {
    const { enabled, off, error, gateways } = t;
    const prev = this.status.tunnel;
    const changed = prev?.enabled !== enabled || prev.off.join() !== off.join();
    if (changed && enabled)
      this.log.info(
        { mode, off, gateways },
        off.length > 0 ? `transparent tunnel on except IPv${off.join(', IPv')}` : 'transparent tunnel on',
      );
    this.metrics.tunnelEnabled.set(enabled ? 1 : 0);
    this.metrics.tunnelFamilyEnabled.reset();
    this.metrics.gatewayAnswering.reset();
    for (const g of gateways ?? []) {
      this.metrics.tunnelFamilyEnabled.set({ family: String(g.family) }, enabled && !off.includes(g.family) ? 1 : 0);
      this.metrics.gatewayAnswering.set({ family: String(g.family), gateway: g.address }, g.answering ? 1 : 0);
    }
    this.status.tunnel = mode
      ? { mode, enabled, off, error, since: changed ? new Date().toISOString() : prev?.since, gateways }
      : undefined;
  }

  /** Whether a pod's endpoint (primary, or on secondary network "ns/nad") is enforced as
   *  its policies say by the last applied state (not when it runs a fallback: its last
   *  tables, or isolation, nor while a hook of it is known gone). */
  isProgrammed(pod: string, network?: string): boolean {
    const matches = (e: { pod?: string; kind: string; network?: string }): boolean =>
      e.pod === pod && (network === undefined ? e.kind === 'pod' : e.kind === 'secondary' && e.network === network);
    return (
      this.compiled?.endpoints.some(
        (e) =>
          matches(e) && !this.status.failed.some((f) => f.ifindex === e.ifindex) && !this.repairs?.isLost(e.ifindex),
      ) ?? false
    );
  }

  /** Whether the pod interface's endpoint is enforced, as the last pass resolved what it is. */
  private interfaceProgrammed(pod: string, ifName: string): boolean {
    const ep = this.sandboxEndpoints.get(sandboxKey(pod, ifName));
    return ep !== undefined && !('error' in ep) && this.isProgrammed(pod, ep.network);
  }

  /** The snapshot with the current sandboxes' addresses for pod endpoints whose source
   *  addresses do not include them yet (none yet, or an older sandbox's: the API publishes
   *  status.podIPs only after ADD returns). Sandboxes whose netns and host interface are
   *  both gone (a DEL missed while the agent was down) are forgotten first; either alone
   *  is not proof (the agent may not see a /proc/PID/ns/net netns path). */
  private async withSandboxes(s: Snapshot, links: LinkInfo[]): Promise<ReturnType<typeof applySandboxes>> {
    const sandboxes = this.sandboxes!;
    const linkThere = (h: HostInterface): boolean => links.some((l) => l.ifindex === h.ifindex && l.name === h.name);
    const isGone = (sb: Sandbox): boolean => !fs.existsSync(sb.netns) && !(sb.hostIf && linkThere(sb.hostIf));
    const gone = await sandboxes.prune(isGone).catch((e: Error) => {
      this.fail('sandboxes', e.message);
      return [];
    });
    for (const g of gone) {
      this.log.info(
        { pod: g.pod, ifName: g.ifName, containerId: g.containerId, netns: g.netns },
        'CNI sandbox gone (netns and host interface): forgotten',
      );
    }
    return applySandboxes(s, sandboxes.all());
  }

  /** CNI ADD: the current sandbox of the pod's interface (host interface, network,
   *  addresses) is recorded, on disk before the answer, then its endpoint is programmed. */
  async cniAdd(req: CniRequest): Promise<void> {
    const pod = cniPod(req);
    const key = sandboxKey(pod, req.ifName);
    const hostIf = await hostInterfaceOf(this.addon.linkList(), req);
    if (hostIf instanceof Error) this.hostIfErrors.set(key, hostIf.message);
    else this.hostIfErrors.delete(key);
    const sandbox: Sandbox = {
      pod,
      containerId: req.containerId,
      ifName: req.ifName,
      ...(req.network && { network: req.network }),
      netns: req.netns,
      ips: prevResultIps(req.prevResult),
    };
    await this.sandboxes!.set(hostIf instanceof Error ? sandbox : { ...sandbox, hostIf });
    this.log.info(
      {
        pod,
        ifName: req.ifName,
        network: req.network,
        containerId: req.containerId,
        hostIf: hostIf instanceof Error ? hostIf.message : hostIf.name,
        ips: sandbox.ips,
      },
      'cni add',
    );
    // An unsupported layout cannot become enforceable by waiting: one pass, then the answer.
    await this.programPod(pod, req.ifName, hostIf instanceof UnsupportedLayoutError ? 0 : undefined);
  }

  /** CNI DEL: forgets the sandbox of the pod's interface if `containerId` is its current
   *  one; a late DEL of a replaced sandbox changes nothing, nor does one for another interface. */
  async cniDel(req: CniRequest): Promise<void> {
    const pod = cniPod(req);
    const outcome = await this.sandboxes!.delete(pod, req.ifName, req.containerId);
    if (outcome === 'stale') {
      const current = this.sandboxes!.get(pod, req.ifName)?.containerId;
      this.log.info(
        { pod, ifName: req.ifName, containerId: req.containerId, current },
        `cni del ignored: container ${req.containerId} is not the current sandbox of ${pod} on ${req.ifName} (${current})`,
      );
      return;
    }
    this.log.info({ pod, ifName: req.ifName, network: req.network, containerId: req.containerId, outcome }, 'cni del');
    if (outcome === 'deleted') {
      this.hostIfErrors.delete(sandboxKey(pod, req.ifName));
      this.request('cni del');
    }
  }

  /** CNI CHECK: the container is the current sandbox of the pod's interface and that endpoint is enforced. */
  cniCheck(req: CniRequest): boolean {
    const pod = cniPod(req);
    return (
      this.sandboxes?.get(pod, req.ifName)?.containerId === req.containerId && this.interfaceProgrammed(pod, req.ifName)
    );
  }

  /** Why the pod interface has no enforced endpoint, as the last pass found. */
  private whyNotEnforced(pod: string, ifName: string): string {
    const ep = this.sandboxEndpoints.get(sandboxKey(pod, ifName));
    if (ep && 'error' in ep) return ep.error;
    // Discovery names the pod (and network) first in each of its warnings
    // ("discover pod ns/name: ...", "discover pod ns/name network ns/nad: ...").
    const prefix = ep?.network ? `discover pod ${pod} network ${ep.network}:` : `discover pod ${pod}:`;
    const discovery = this.discoveryWarnings.filter((w) => w.startsWith(prefix));
    const hostIf = this.hostIfErrors.get(sandboxKey(pod, ifName));
    const reasons = [...discovery, ...(hostIf ? [hostIf] : [])];
    if (reasons.length > 0) return reasons.join('; ');
    const p = this.latest?.snapshot.pods.find((x) => `${x.namespace}/${x.name}` === pod);
    if (!p) return `no enforced endpoint: the state source does not list pod ${pod}`;
    if (p.nodeName !== this.opts.nodeName)
      return `no enforced endpoint: pod ${pod} is on node ${p.nodeName || '(none)'}, this agent is node ${this.opts.nodeName}`;
    if (p.hostNetwork) return `no enforced endpoint: pod ${pod} uses the host network`;
    return 'no enforced endpoint: no address of the pod known (none in the state source or the CNI result) and no host interface found';
  }

  /** Reconcile until the endpoint of the pod's interface is enforced (or fail naming why). */
  private async programPod(pod: string, ifName: string, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.running) await new Promise((r) => setTimeout(r, 10));
      await this.apply(`cni add ${pod} ${ifName}`);
      if (this.interfaceProgrammed(pod, ifName)) return;
      // This interface's failure when CNI named its host side (else route discovery found it).
      const hostIf = this.sandboxes!.get(pod, ifName)?.hostIf;
      const failure = this.status.failed.find((f) => f.pod === pod && (!hostIf || f.ifindex === hostIf.ifindex));
      // Enforced, but closed rather than as its policies say: the pod must not start
      // believing it is (the runtime retries the ADD).
      if (failure?.fallback) {
        const how = Object.entries(failure.fallback).map(
          ([d, f]) => `${d} ${f === 'kept' ? 'on its last enforced table' : 'isolated'}`,
        );
        throw new Error(`program pod ${pod}: ${how.join(', ')}, not enforced as its policies say: ${failure.error}`);
      }
      if (Date.now() > deadline) {
        throw new Error(
          `program pod ${pod}${ifName === PRIMARY_IFNAME ? '' : ` on ${ifName}`}: ${failure?.error ?? this.whyNotEnforced(pod, ifName)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private onEvent(sample: Buffer): void {
    if (!this.flowCtx) return;
    const logged = this.flowLimiter.allow();
    if (!logged) this.metrics.flowLogsSuppressed.inc();
    if (!logged && this.flowFeed.size === 0) return;
    const flow = toFlow(decodeEvent(sample), this.flowCtx());
    this.flowFeed.publish(flow);
    if (logged) this.log.info({ flow }, 'flow');
  }
}

/** namespace/name of the pod a CNI request is for (CNI_ARGS K8S_POD_NAMESPACE, K8S_POD_NAME). */
function cniPod(req: CniRequest): string {
  if (!req.podNamespace || !req.podName) {
    throw new Error(
      `cni ${req.op} container ${req.containerId}: no pod named (CNI_ARGS needs K8S_POD_NAMESPACE and K8S_POD_NAME)`,
    );
  }
  return `${req.podNamespace}/${req.podName}`;
}
