// Which interfaces of this node to enforce on, from the node's own state:
//  - pod endpoints: the link a pod IP's /32 or /128 route in the main table points at
//    (host-side veth; with both ends' MACs when it is one, for local delivery);
//  - secondary networks: the VF representor of PodNetwork.pciAddress (sysfs), or else
//    the link routing one of that network's pod IPs;
//  - host interfaces: link names matching config.hostInterfaces globs.
// A pod whose sandbox CNI announced is enforced on the host interface CNI named, while
// that link (same name and ifindex) exists; route discovery is for the others.
// Pure over a NetView so tests feed it links and routes directly.
import type { DiscoveredEndpoint } from '../compile/endpoint';
import type { LinkInfo, NativeAddon, Route } from '../datapath/native-api';
import type { Snapshot } from '../model/types';
import { matchesGlob } from './glob';
import { representorOf } from './sysfs';

export const MAIN_TABLE = 254;

export interface NetView {
  links: LinkInfo[];
  /** Main-table routes of both families. */
  routes: Route[];
  /** The MAC of a veth's peer (in the pod's namespace), null if not a veth or not found. */
  peerMac(link: LinkInfo): string | null;
}

export interface DiscoverOptions {
  nodeName: string;
  hostInterfaces: readonly string[];
  sysfsRoot: string;
  /** Host-side interface of each CNI-announced pod sandbox, by namespace/name. */
  cniInterfaces?: ReadonlyMap<string, { name: string; ifindex: number }>;
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

/** The link CNI announced for the pod, if it is still that link (names are reused). */
function cniLink(byName: ReadonlyMap<string, LinkInfo>, pod: string, opts: DiscoverOptions): LinkInfo | undefined {
  const want = opts.cniInterfaces?.get(pod);
  const link = want && byName.get(want.name);
  return link?.ifindex === want?.ifindex ? link : undefined;
}

export function discoverEndpoints(view: NetView, snapshot: Snapshot, opts: DiscoverOptions): Discovery {
  const links = new Map(view.links.map((l) => [l.ifindex, l]));
  const byName = new Map(view.links.map((l) => [l.name, l]));
  const routeOif = hostRoutes(view.routes);
  const endpoints: DiscoveredEndpoint[] = [];
  const warnings: string[] = [];
  const taken = new Set<number>();
  const add = (link: LinkInfo, ep: Omit<DiscoveredEndpoint, 'ifname' | 'ifindex'>): void => {
    if (taken.has(link.ifindex)) return;
    taken.add(link.ifindex);
    endpoints.push({ ifname: link.name, ifindex: link.ifindex, ...ep });
  };
  const linkForIps = (ips: readonly string[]): LinkInfo | undefined => {
    for (const ip of ips) {
      const l = links.get(routeOif.get(ip) ?? -1);
      if (l) return l;
    }
    return undefined;
  };

  for (const pod of snapshot.pods) {
    if (pod.nodeName !== opts.nodeName || pod.hostNetwork) continue;
    const key = `${pod.namespace}/${pod.name}`;
    const link = cniLink(byName, key, opts) ?? linkForIps(pod.ips);
    const podMac = link ? view.peerMac(link) : null;
    if (link) add(link, { kind: 'pod', pod: key, ...(podMac && { veth: { podMac, hostMac: link.mac } }) });
    else if (pod.ips.length > 0) warnings.push(`discover pod ${key}: no /32 or /128 route to ${pod.ips.join(', ')} on this node`);
    for (const net of pod.networks) {
      let sec: LinkInfo | undefined;
      if (net.pciAddress) {
        const rep = representorOf(opts.sysfsRoot, net.pciAddress);
        if (rep instanceof Error) warnings.push(`discover pod ${key} network ${net.network}: ${rep.message}`);
        else {
          sec = byName.get(rep);
          if (!sec) warnings.push(`discover pod ${key} network ${net.network}: representor ${rep} is not a link here`);
        }
      } else {
        sec = linkForIps(net.ips);
        if (!sec) warnings.push(`discover pod ${key} network ${net.network}: no route to ${net.ips.join(', ') || '(no IPs)'}`);
      }
      if (sec) add(sec, { kind: 'secondary', pod: key, network: net.network });
    }
  }
  for (const link of [...view.links].sort((a, b) => a.ifindex - b.ifindex)) {
    if (matchesAny(link.name, opts.hostInterfaces)) add(link, { kind: 'host' });
  }
  endpoints.sort((a, b) => a.ifindex - b.ifindex);
  return { endpoints, warnings };
}
