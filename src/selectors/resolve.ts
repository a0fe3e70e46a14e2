// Who is who: endpoints (pods and nodes) by address, which endpoints a policy subject or
// a peer selects, and named ports. hostNetwork pods are their node: they share its
// addresses, so they are never selected as pods, only as nodes.
import { canonicalIp } from '../model/ip';
import { NAMESPACE_NAME_LABEL } from '../model/objects';
import type { L4Protocol, Peer, Subject } from '../model/rules';
import type { LabelSelector, Labels, NodeObj, PodObj, Snapshot } from '../model/types';
import { matchesSelector } from './labels';

export type Endpoint = { kind: 'pod'; pod: PodObj } | { kind: 'node'; node: NodeObj };

/** "ns/pod" or "node/NAME": the names trace and the matrix print. */
export function endpointName(ep: Endpoint): string {
  return ep.kind === 'pod' ? `${ep.pod.namespace}/${ep.pod.name}` : `node/${ep.node.name}`;
}

export function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  return endpointName(a) === endpointName(b);
}

/** Labels of a namespace; a namespace without an object still has its name label. */
export function namespaceLabels(s: Snapshot, namespace: string): Labels {
  return s.namespaces.find((n) => n.name === namespace)?.labels ?? { [NAMESPACE_NAME_LABEL]: namespace };
}

export interface PodSelection {
  /** Exact namespace; wins over namespaceSelector. Neither = every namespace. */
  namespace?: string;
  namespaceSelector?: LabelSelector;
  /** Absent = every pod. */
  podSelector?: LabelSelector;
}

export function podMatches(s: Snapshot, pod: PodObj, sel: PodSelection): boolean {
  return !pod.hostNetwork && selectionMatches(sel, pod.namespace, () => namespaceLabels(s, pod.namespace), pod.labels);
}

/** podMatches for a (not hostNetwork) pod given by its parts: compile/ matches identities. */
export function selectionMatches(
  sel: PodSelection,
  namespace: string,
  nsLabels: () => Labels,
  labels: Labels,
): boolean {
  if (sel.namespace !== undefined && namespace !== sel.namespace) return false;
  if (sel.namespace === undefined && sel.namespaceSelector && !matchesSelector(sel.namespaceSelector, nsLabels()))
    return false;
  return !sel.podSelector || matchesSelector(sel.podSelector, labels);
}

export function subjectSelects(s: Snapshot, subject: Subject, ep: Endpoint): boolean {
  if (subject.kind === 'nodes') return ep.kind === 'node' && matchesSelector(subject.nodeSelector, ep.node.labels);
  return ep.kind === 'pod' && podMatches(s, ep.pod, subject);
}

/** Label-based peers only: `cidr` peers match addresses, not endpoints (see reference/). */
export function peerSelects(s: Snapshot, peer: Peer, ep: Endpoint): boolean {
  switch (peer.kind) {
    case 'any':
      return true;
    case 'pods':
      return ep.kind === 'pod' && podMatches(s, ep.pod, peer);
    case 'nodes':
      return ep.kind === 'node' && matchesSelector(peer.nodeSelector, ep.node.labels);
    case 'cidr':
      return false;
  }
}

/** The node a pod runs on; a hostNetwork pod on an unknown node gets a stand-in node. */
export function nodeOfPod(s: Snapshot, pod: PodObj): NodeObj | undefined {
  const node = s.nodes.find((n) => n.name === pod.nodeName);
  if (node || !pod.hostNetwork) return node;
  return { name: pod.nodeName ?? `${pod.namespace}/${pod.name}`, labels: {}, addresses: pod.ips };
}

/** Every endpoint on a network: pods (not hostNetwork) and, on the primary network, nodes. */
export function allEndpoints(s: Snapshot, network?: string): Endpoint[] {
  const pods: Endpoint[] = s.pods
    .filter((p) => !p.hostNetwork && (network === undefined || p.networks.some((n) => n.network === network)))
    .map((pod) => ({ kind: 'pod', pod }));
  const nodes: Endpoint[] = network === undefined ? s.nodes.map((node) => ({ kind: 'node', node })) : [];
  return [...pods, ...nodes];
}

/** Addresses of an endpoint on a network (undefined = the primary network). */
export function endpointIps(ep: Endpoint, network?: string): string[] {
  if (ep.kind === 'node') return network === undefined ? ep.node.addresses : [];
  if (network === undefined) return ep.pod.ips;
  return ep.pod.networks.filter((n) => n.network === network).flatMap((n) => n.ips);
}

/** The endpoint owning an address, or undefined for addresses outside the cluster. */
export function endpointByIp(s: Snapshot, ip: string, network?: string): Endpoint | undefined {
  const addr = canonicalIp(ip);
  if (addr === undefined) return undefined;
  const direct = allEndpoints(s, network).find((ep) => endpointIps(ep, network).includes(addr));
  if (direct || network !== undefined) return direct;
  const hostPod = s.pods.find((p) => p.hostNetwork && p.ips.includes(addr));
  const node = hostPod && nodeOfPod(s, hostPod);
  return node && { kind: 'node', node };
}

/** Endpoints a subject selects (compile/ uses this to place rules). */
export function subjectEndpoints(s: Snapshot, subject: Subject): Endpoint[] {
  return allEndpoints(s).filter((ep) => subjectSelects(s, subject, ep));
}

/** Endpoints a label-based peer selects on a network. */
export function peerEndpoints(s: Snapshot, peer: Peer, network?: string): Endpoint[] {
  return allEndpoints(s, network).filter((ep) => peerSelects(s, peer, ep));
}

/** The number of a named container port of a pod for a protocol (names are per protocol). */
export function namedPort(pod: PodObj, name: string, protocol: L4Protocol): number | undefined {
  return pod.ports.find((p) => p.name === name && p.protocol === protocol)?.containerPort;
}
