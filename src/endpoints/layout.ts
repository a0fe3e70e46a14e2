// Which host-side devices a pod can be enforced on. netfence hooks a pod's own
// interface: a host-side veth (routed, or a port of a Linux or OVS bridge) or a VF representor.
// Pods whose traffic never crosses a device of their own in this netns cannot be.
import type { LinkInfo } from '../datapath/native-api';

export const SUPPORTED_LAYOUTS =
  'supported: a host-side veth per pod, routed (ptp, Calico, kindnet, AWS VPC CNI) or a port of a Linux bridge (bridge, flannel, k3s, Canal) or OVS bridge, or an SR-IOV VF representor';

/** Kinds whose pods share their parent's device (macvlan/ipvlan: pod-to-pod traffic
 *  never leaves the parent's driver) or live in a switch netfence does not program (OVS). */
const UNSUPPORTED: Readonly<Record<string, string>> = {
  macvlan: 'macvlan',
  macvtap: 'macvtap',
  ipvlan: 'ipvlan',
  ipvtap: 'ipvtap',
  openvswitch: 'OVS internal port',
};

/** Kinds of switches whose veth ports are L2: bridged traffic between ports is never
 *  routed (an OVS bridge device is itself an internal port of kind openvswitch). */
const SWITCHES = new Set(['bridge', 'openvswitch']);

export function isSwitch(link: Pick<LinkInfo, 'kind'> | undefined): boolean {
  return link !== undefined && SWITCHES.has(link.kind);
}

/** Why `link` cannot be a pod's enforced interface: the layout it belongs to and what is
 *  supported; undefined when it can be. A bridge device is never one: bridged traffic
 *  between its ports does not cross it (its pods are enforced on their ports). */
export function layoutError(link: Pick<LinkInfo, 'name' | 'kind'>): string | undefined {
  const layout = UNSUPPORTED[link.kind];
  if (layout) return `layout ${layout} (${link.name}) cannot be enforced on: ${SUPPORTED_LAYOUTS}`;
  if (link.kind === 'bridge')
    return `${link.name} is a Linux bridge, not a pod's interface: enforce on the pod's bridge port (${SUPPORTED_LAYOUTS})`;
  return undefined;
}
