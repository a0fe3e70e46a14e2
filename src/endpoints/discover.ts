// Which interfaces of this node to enforce on, from the node's own state:
//  - pod endpoints: the link a pod IP's /32 or /128 route in the main table points at
//    (host-side veth; with both ends' MACs when it is one, for local delivery); on bridge
//    layouts (no such route, or one through the bridge) the pod IP's MAC (neighbour table)
//    -> the bridge port it was learned on (FDB) or whose veth peer has it; else the port
//    of a Linux or OVS bridge whose veth peer has the IP (a pod that has not talked to
//    the node yet);
//  - secondary networks: the VF representor of PodNetwork.pciAddress (sysfs), or else
//    the link routing one of that network's pod IPs;
//  - host interfaces: link names matching config.hostInterfaces globs.
// A pod interface whose sandbox CNI announced (the primary one, or one per secondary
// network) is enforced on the host interface CNI named, while that link (same name and
// ifindex) exists; route discovery is for the others.
// Pure over a NetView so tests feed it links and routes directly.
import type { DiscoveredEndpoint } from '../compile/endpoint';
import type { FdbEntry, LinkInfo, NativeAddon, Neighbour, Route } from '../datapath/native-api';
import type { Snapshot } from '../model/types';
import { matchesGlob } from './glob';
import { isSwitch, layoutError } from './layout';
import type { PeerMacs } from './peer-macs';
import { representorOf } from './sysfs';

export const MAIN_TABLE = 254;

export interface NetView {
  links: LinkInfo[];
  /** Main-table routes of both families. */
  routes: Route[];
  neighbours: Neighbour[];
  fdb: FdbEntry[];
  /** The MAC of a veth's peer (in the pod's namespace), null if not a veth or not found. */
  peerMac(link: LinkInfo): string | null;
  /** The global addresses of a veth's peer (in the pod's namespace). */
  peerAddrs(link: LinkInfo): string[];
}

export interface DiscoverOptions {
  nodeName: string;
  hostInterfaces: readonly string[];
  sysfsRoot: string;
  /** Host-side interface of each CNI-announced pod sandbox interface, by cniEndpointKey. */
  cniInterfaces?: ReadonlyMap<string, { name: string; ifindex: number }>;
}

export interface Discovery {
  endpoints: DiscoveredEndpoint[];
  /** Pods of this node whose interface was not found (yet), with the reason. */
  warnings: string[];
}

/** The node's links and routes now; peer MACs from `peerMacs` where it has them. */
export function readNetView(addon: NativeAddon, peerMacs?: PeerMacs): NetView {
  // Neighbours and FDBs are read only when a pod has no host route (bridge layouts).
  let neighbours: Neighbour[] | undefined;
  let fdb: FdbEntry[] | undefined;
  const links = addon.linkList();
  peerMacs?.keepOnly(links);
  const askMac = (link: LinkInfo): string | null => orGone(() => addon.linkPeerMac(link), null);
  return {
    links,
    routes: [...addon.routeList(4, MAIN_TABLE), ...addon.routeList(6, MAIN_TABLE)],
    get neighbours() {
      return (neighbours ??= addon.neighList());
    },
    get fdb() {
      return (fdb ??= addon.fdbList());
    },
    // A veth whose pod namespace is being torn down has no peer to ask about any more.
    peerMac: (link) => (peerMacs ? peerMacs.lookup(link, askMac) : askMac(link)),
    peerAddrs: (link) => orGone(() => addon.linkPeerAddrs(link), []),
  };
}

/** `f()`, or `gone` when the kernel says the object it asks about is gone or going
 *  (ENODEV, ENOENT; EINVAL for a peer namespace id no longer valid). */
function orGone<T>(f: () => T, gone: T): T {
  try {
    return f();
  } catch (e) {
    if (['ENODEV', 'ENOENT', 'EINVAL'].includes((e as { code?: string }).code ?? '')) return gone;
    throw e;
  }
}

function hostRoutes(routes: Route[]): Map<string, number> {
  const byIp = new Map<string, number>();
  for (const r of routes) {
    const [ip, len] = r.dst.split('/');
    if (r.oif && ((r.family === 4 && len === '32') || (r.family === 6 && len === '128'))) byIp.set(ip, r.oif);
  }
  return byIp;
}

export function matchesAny(name: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => matchesGlob(name, p));
}

/** "ns/name" for a pod's primary endpoint, "ns/name network ns/nad" for a secondary one. */
export const cniEndpointKey = (pod: string, network?: string): string => (network ? `${pod} network ${network}` : pod);

/** The link CNI announced for the endpoint, if it is still that link (names are reused). */
function cniLink(byName: ReadonlyMap<string, LinkInfo>, key: string, opts: DiscoverOptions): LinkInfo | undefined {
  const want = opts.cniInterfaces?.get(key);
  const link = want && byName.get(want.name);
  return link?.ifindex === want?.ifindex ? link : undefined;
}

/** The link a pod's IPs are behind, or why none is found. */
type Located = { link: LinkInfo } | { error: string };

/** What an endpoint on a pod interface belongs to. */
export type PodEndpointOf = Pick<DiscoveredEndpoint, 'pod' | 'network'> & { kind: 'pod' | 'secondary' };

/**
 * The endpoint of a pod interface on `link`, a host-side interface that discovery found or
 * a CNI result named: refused for layouts netfence cannot enforce on; a port of a Linux or
 * OVS bridge carries its bridge (bridged traffic is not routed: no local delivery, no
 * tunnel), a routed pod
 * veth both MACs (local delivery).
 */
export function endpointOn(
  view: Pick<NetView, 'links' | 'peerMac'>,
  link: LinkInfo,
  of: PodEndpointOf,
): DiscoveredEndpoint | { error: string } {
  const err = layoutError(link);
  if (err) return { error: err };
  const ep: DiscoveredEndpoint = { ifname: link.name, ifindex: link.ifindex, ...of };
  const master = link.masterIfindex ? view.links.find((l) => l.ifindex === link.masterIfindex) : undefined;
  if (isSwitch(master)) return { ...ep, bridge: master!.name };
  const podMac = of.kind === 'pod' ? view.peerMac(link) : null;
  return podMac ? { ...ep, veth: { podMac, hostMac: link.mac } } : ep;
}

/** Finds pods' interfaces in one NetView. */
class Locator {
  private readonly links: Map<number, LinkInfo>;
  private readonly routeOif: Map<string, number>;
  /** IP -> its valid neighbour entries; IP -> the switch port whose veth peer has it:
   *  read once per view when first needed. */
  private neighboursByIp?: Map<string, Neighbour[]>;
  private portByPeerIp?: Map<string, LinkInfo>;

  constructor(private readonly view: NetView) {
    this.links = new Map(view.links.map((l) => [l.ifindex, l]));
    this.routeOif = hostRoutes(view.routes);
  }

  locate(ips: readonly string[]): Located | undefined {
    let failed: Located | undefined;
    for (const ip of ips) {
      const routed = this.links.get(this.routeOif.get(ip) ?? -1);
      const found =
        routed && routed.kind !== 'bridge'
          ? this.check(routed, ip)
          : (this.viaNeighbour(ip) ?? this.viaPeerAddress(ip));
      if (found && !('error' in found)) return found;
      failed ??= found;
    }
    return failed;
  }

  /** A device is not that pod's when the node's neighbour entry for the IP on it names
   *  another MAC than its veth peer's (a stale route, a reused IP). */
  private check(link: LinkInfo, ip: string): Located {
    const mac = this.neighbours(ip).find((n) => n.ifindex === link.ifindex)?.mac;
    const peer = mac && this.view.peerMac(link);
    if (peer && peer !== mac) return { error: `${ip} is at ${mac} on ${link.name}, whose veth peer is ${peer}` };
    return { link };
  }

  private neighbours(ip: string): Neighbour[] {
    if (!this.neighboursByIp) {
      this.neighboursByIp = new Map();
      for (const n of this.view.neighbours)
        if (n.valid) this.neighboursByIp.set(n.ip, [...(this.neighboursByIp.get(n.ip) ?? []), n]);
    }
    return this.neighboursByIp.get(ip) ?? [];
  }

  /** IP -> MAC (neighbour table) -> the bridge port that MAC is behind (FDB, else the
   *  port whose veth peer has it), or the veth whose peer has it. */
  private viaNeighbour(ip: string): Located | undefined {
    const n = this.neighbours(ip)[0];
    const on = n && this.links.get(n.ifindex);
    if (!n || !on) return undefined;
    if (on.kind === 'openvswitch') return undefined; // OVS keeps its FDB in user space: by peer address
    if (on.kind !== 'bridge') {
      if (on.kind === 'veth' && this.view.peerMac(on) === n.mac) return { link: on };
      return {
        error:
          layoutError(on) ?? `${ip} is at ${n.mac} on ${on.name}, neither a bridge nor a veth whose peer has that MAC`,
      };
    }
    const learned = this.view.fdb.find((f) => f.masterIfindex === on.ifindex && f.mac === n.mac && !f.local && !f.self);
    const port =
      this.links.get(learned?.ifindex ?? -1) ??
      this.view.links.find(
        (l) => l.masterIfindex === on.ifindex && l.kind === 'veth' && this.view.peerMac(l) === n.mac,
      );
    if (!port) return { error: `${ip} is at ${n.mac} behind bridge ${on.name}, on none of its ports` };
    return this.check(port, ip);
  }

  private viaPeerAddress(ip: string): Located | undefined {
    this.portByPeerIp ??= new Map(
      this.view.links
        .filter((l) => l.kind === 'veth' && isSwitch(this.links.get(l.masterIfindex)))
        .flatMap((port) => this.view.peerAddrs(port).map((a) => [a, port] as const)),
    );
    const port = this.portByPeerIp.get(ip);
    return port && { link: port };
  }
}

export function discoverEndpoints(view: NetView, snapshot: Snapshot, opts: DiscoverOptions): Discovery {
  const byName = new Map(view.links.map((l) => [l.name, l]));
  const locator = new Locator(view);
  const endpoints: DiscoveredEndpoint[] = [];
  const warnings: string[] = [];
  const taken = new Set<number>();
  const add = (ep: DiscoveredEndpoint): void => {
    if (taken.has(ep.ifindex)) return;
    taken.add(ep.ifindex);
    endpoints.push(ep);
  };
  /** The endpoint on what was found for `ips`, or the warning why there is none. */
  const onFound = (
    found: Located | undefined,
    ips: readonly string[],
    of: PodEndpointOf,
  ): DiscoveredEndpoint | string => {
    const ep = found && !('error' in found) ? endpointOn(view, found.link, of) : found;
    if (ep && !('error' in ep)) return ep;
    const why =
      ep?.error ??
      `no /32 or /128 route to ${ips.join(', ') || '(no IPs)'} on this node, and no neighbour entry or bridge port with them`;
    return `discover pod ${of.pod}${of.network ? ` network ${of.network}` : ''}: ${why}`;
  };

  for (const pod of snapshot.pods) {
    if (pod.nodeName !== opts.nodeName || pod.hostNetwork) continue;
    const key = `${pod.namespace}/${pod.name}`;
    const cni = cniLink(byName, key, opts);
    const primary = onFound(cni ? { link: cni } : locator.locate(pod.ips), pod.ips, { kind: 'pod', pod: key });
    if (typeof primary !== 'string') add(primary);
    else if (pod.ips.length > 0) warnings.push(primary);
    for (const net of pod.networks) {
      let sec: Located | undefined;
      const announced = cniLink(byName, cniEndpointKey(key, net.network), opts);
      if (announced) sec = { link: announced };
      else if (net.pciAddress) {
        const rep = representorOf(opts.sysfsRoot, net.pciAddress);
        const link = rep instanceof Error ? undefined : byName.get(rep);
        sec =
          rep instanceof Error
            ? { error: rep.message }
            : link
              ? { link }
              : { error: `representor ${rep} is not a link here` };
      } else sec = locator.locate(net.ips);
      const ep = onFound(sec, net.ips, { kind: 'secondary', pod: key, network: net.network });
      if (typeof ep !== 'string') add(ep);
      else warnings.push(ep);
    }
  }
  for (const link of [...view.links].sort((a, b) => a.ifindex - b.ifindex)) {
    if (matchesAny(link.name, opts.hostInterfaces)) add({ ifname: link.name, ifindex: link.ifindex, kind: 'host' });
  }
  endpoints.sort((a, b) => a.ifindex - b.ifindex);
  return { endpoints, warnings };
}
