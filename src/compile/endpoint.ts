// What endpoint discovery hands the compiler: an interface to enforce on and what
// it belongs to. Pure data; discovery itself lives in src/endpoints/.

export interface DiscoveredEndpoint {
  ifname: string;
  ifindex: number;
  /** pod: primary pod interface (host veth / VF representor); host: node interface;
   *  secondary: a pod's interface on a secondary network (MultiNetworkPolicy). */
  kind: 'pod' | 'host' | 'secondary';
  pod?: string; // "ns/name" (pod and secondary)
  network?: string; // "ns/nad" (secondary)
  /** pod on a host veth: its MACs, the pod side's and the host side's (local delivery) */
  veth?: { podMac: string; hostMac: string };
  /** the Linux or OVS bridge this interface is a port of (an L2 layout: no local
   *  delivery, no transparent tunnel: bridged traffic is not routed) */
  bridge?: string;
}

/** Stable key of an endpoint (endpoint ids are derived from it). */
export function endpointKey(ep: DiscoveredEndpoint): string {
  return ep.kind === 'host' ? `host/${ep.ifname}` : `${ep.kind}/${ep.pod ?? ''}/${ep.network ?? ''}`;
}

export function endpointLabel(ep: DiscoveredEndpoint): string {
  if (ep.kind === 'host') return `host interface ${ep.ifname}`;
  return ep.network ? `${ep.pod} on ${ep.network} (${ep.ifname})` : `${ep.pod} (${ep.ifname})`;
}
