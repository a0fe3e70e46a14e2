// Which interfaces of this node to enforce on, from the node's own state:
//  - pod endpoints: the link a pod IP's /32 or /128 route in the main table points at
//    (host-side veth; with both ends' MACs when it is one, for local delivery); on bridge
//    layouts (no such route, or one through the bridge) the pod IP's MAC (neighbour table)
//    -> the bridge port it was learned on (FDB) or whose veth peer has it;
//  - secondary networks: the VF representor of PodNetwork.pciAddress (sysfs), or else
//    the link routing one of that network's pod IPs;
//  - host interfaces: link names matching config.hostInterfaces globs.
// Pure over a NetView so tests feed it links and routes directly.
import type { DiscoveredEndpoint } from '../compile/endpoint';
import type { FdbEntry, LinkInfo, NativeAddon, Neighbour, Route } from '../datapath/native-api';
import type { Snapshot } from '../model/types';
import { matchesGlob } from './glob';
import { layoutError } from './layout';
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
}

export interface DiscoverOptions {
  nodeName: string;
  hostInterfaces: readonly string[];
  sysfsRoot: string;
}

export interface Discovery {
  endpoints: DiscoveredEndpoint[];
  /** Pods of this node whose interface was not found (yet), with the reason. */
  warnings: string[];
}

export function readNetView(addon: NativeAddon): NetView {
  return {
    links: addon.linkList(),
    routes: [...addon.routeList(4, MAIN_TABLE), ...addon.routeList(6, MAIN_TABLE)],
    neighbours: addon.neighList(),
    fdb: addon.fdbList(),
    peerMac: (link) => addon.linkPeerMac(link),
  };
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

/** Where a pod's IPs are: the link to enforce on (with its bridge when it is a port of
 *  one), or why none can be. */
type Located = { link: LinkInfo; bridge?: LinkInfo } | { error: string };

/** Finds pods' interfaces in one NetView. */
class Locator {
  private readonly links: Map<number, LinkInfo>;
  private readonly routeOif: Map<string, number>;

  constructor(private readonly view: NetView) {
    this.links = new Map(view.links.map((l) => [l.ifindex, l]));
    this.routeOif = hostRoutes(view.routes);
  }

  locate(ips: readonly string[]): Located | undefined {
    let failed: Located | undefined;
    for (const ip of ips) {
      const routed = this.links.get(this.routeOif.get(ip) ?? -1);
      const found = routed && routed.kind !== 'bridge' ? this.check(routed, ip) : this.viaNeighbour(ip);
      if (found && !('error' in found)) return found;
      failed ??= found;
    }
    return failed;
  }

  /** A routed device is that pod's unless its layout is unsupported or the node's
   *  neighbour entry for the IP there names another MAC than the veth peer's. */
  private check(link: LinkInfo, ip: string): Located {
    const err = layoutError(link);
    if (err) return { error: err };
    const mac = this.neighbourMac(ip, link.ifindex);
    const peer = mac && this.view.peerMac(link);
    if (peer && peer !== mac) return { error: `${ip} is at ${mac} on ${link.name}, whose veth peer is ${peer}` };
    return this.withBridge(link);
  }

  private withBridge(link: LinkInfo): Located {
    const master = this.links.get(link.masterIfindex);
    return master?.kind === 'bridge' ? { link, bridge: master } : { link };
  }

  private neighbourMac(ip: string, ifindex?: number): string | undefined {
    return this.view.neighbours.find((n) => n.valid && n.ip === ip && (ifindex === undefined || n.ifindex === ifindex))?.mac;
  }

  /** IP -> MAC (neighbour table) -> the bridge port that MAC is behind (FDB, else the
   *  port whose veth peer has it), or the veth whose peer has it. */
  private viaNeighbour(ip: string): Located | undefined {
    const n = this.view.neighbours.find((x) => x.valid && x.ip === ip);
    const on = n && this.links.get(n.ifindex);
    if (!n || !on) return undefined;
    if (on.kind !== 'bridge') {
      if (on.kind === 'veth' && this.view.peerMac(on) === n.mac) return this.check(on, ip);
      return { error: layoutError(on) ?? `${ip} is at ${n.mac} on ${on.name}, neither a bridge nor a veth whose peer has that MAC` };
    }
    const learned = this.view.fdb.find((f) => f.masterIfindex === on.ifindex && f.mac === n.mac && !f.local && !f.self);
    const port =
      this.links.get(learned?.ifindex ?? -1) ??
      this.view.links.find((l) => l.masterIfindex === on.ifindex && l.kind === 'veth' && this.view.peerMac(l) === n.mac);
    if (!port) return { error: `${ip} is at ${n.mac} behind bridge ${on.name}, on none of its ports` };
    return this.check(port, ip);
  }
}

export function discoverEndpoints(view: NetView, snapshot: Snapshot, opts: DiscoverOptions): Discovery {
  const byName = new Map(view.links.map((l) => [l.name, l]));
  const locator = new Locator(view);
  const endpoints: DiscoveredEndpoint[] = [];
  const warnings: string[] = [];
  const taken = new Set<number>();
  const add = (link: LinkInfo, ep: Omit<DiscoveredEndpoint, 'ifname' | 'ifindex'>): void => {
    if (taken.has(link.ifindex)) return;
    taken.add(link.ifindex);
    endpoints.push({ ifname: link.name, ifindex: link.ifindex, ...ep });
  };
  const notFound = (ips: readonly string[], found: Located | undefined): string =>
    found && 'error' in found ? found.error : `no /32 or /128 route and no neighbour entry for ${ips.join(', ') || '(no IPs)'} on this node`;

  for (const pod of snapshot.pods) {
    if (pod.nodeName !== opts.nodeName || pod.hostNetwork) continue;
    const key = `${pod.namespace}/${pod.name}`;
    const found = locator.locate(pod.ips);
    if (found && !('error' in found)) {
      const { link, bridge } = found;
      // A bridge port is L2: local delivery (a routed hop) and the tunnel do not apply.
      const podMac = bridge ? null : view.peerMac(link);
      add(link, { kind: 'pod', pod: key, ...(bridge && { bridge: bridge.name }), ...(podMac && { veth: { podMac, hostMac: link.mac } }) });
    } else if (pod.ips.length > 0) warnings.push(`discover pod ${key}: ${notFound(pod.ips, found)}`);
    for (const net of pod.networks) {
      let sec: Located | undefined;
      if (net.pciAddress) {
        const rep = representorOf(opts.sysfsRoot, net.pciAddress);
        const link = rep instanceof Error ? undefined : byName.get(rep);
        sec = rep instanceof Error ? { error: rep.message } : link ? { link } : { error: `representor ${rep} is not a link here` };
      } else sec = locator.locate(net.ips);
      if (sec && !('error' in sec)) add(sec.link, { kind: 'secondary', pod: key, network: net.network, ...(sec.bridge && { bridge: sec.bridge.name }) });
      else warnings.push(`discover pod ${key} network ${net.network}: ${notFound(net.ips, sec)}`);
    }
  }
  for (const link of [...view.links].sort((a, b) => a.ifindex - b.ifindex)) {
    if (matchesAny(link.name, opts.hostInterfaces)) add(link, { kind: 'host' });
  }
  endpoints.sort((a, b) => a.ifindex - b.ifindex);
  return { endpoints, warnings };
}
