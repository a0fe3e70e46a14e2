// Identities: every pod address maps to the identity of its (network, namespace,
// namespace labels, pod labels, named ports) and every node address (hostNetwork pods
// are their node) to the identity of its node labels. Ids are content hashes, so adding
// a pod with a label set that already exists costs one nf_ident_exact entry.
// A pod's addresses on a secondary network get an identity of that network: only
// MultiNetworkPolicies for that network select them (as the reference resolves them).
import type { ContainerPort, Labels, NamespaceObj, NodeObj, PodObj, Snapshot } from '../model/types';
import { type Endpoint, namespaceLabels } from '../selectors/resolve';

export interface Identity {
  id: number;
  /** Content key: the id is derived from it; equal keys select and match alike. */
  key: string;
  /** A pod or node of this identity: selectors evaluate identities through it. */
  endpoint: Endpoint;
  network?: string; // secondary network "ns/nad"; absent = primary
  namespaceLabels: Labels;
  labels: Labels;
  /** Named container ports: "PROTO/name" -> port number (egress named ports resolve here). */
  namedPorts: ReadonlyMap<string, number>;
  description: string;
}

export interface AddressOwner {
  ip: string;
  identity: number;
  pod?: PodObj; // absent for node addresses
  node?: string;
}

export interface Identities {
  /** Sorted by id. */
  list: Identity[];
  byId: ReadonlyMap<number, Identity>;
  /** key hex of the 16-byte address -> owner. */
  byAddress: ReadonlyMap<string, AddressOwner>;
  errors: string[];
}

export function namedPortKey(protocol: string, name: string): string {
  return `${protocol}/${name}`;
}

function sortedLabels(labels: Labels): [string, string][] {
  return Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function labelText(labels: Labels): string {
  return sortedLabels(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

function namedPorts(ports: ContainerPort[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const p of ports) {
    const key = p.name ? namedPortKey(p.protocol, p.name) : undefined;
    // The first container port of a name wins, as the reference resolves it.
    if (key && !out.has(key)) out.set(key, p.containerPort);
  }
  return out;
}

/** A namespace's labels with their part of identity keys, computed once per compile. */
export interface NamespaceInfo {
  labels: Labels;
  keyText: string;
  /** The head of its pods' primary identity keys (see podKey). */
  podKeyHead: string;
}

export function namespaceInfo(name: string, labels: Labels): NamespaceInfo {
  const keyText = JSON.stringify(sortedLabels(labels));
  return { labels, keyText, podKeyHead: ['["pod"', '""', JSON.stringify(name), keyText].join(',') };
}

/** Namespace name -> labels as namespaceLabels() finds them (the first object of a
 *  name); `info` may be memoized per namespace object. */
export function namespaceIndex(
  s: Snapshot,
  info: (ns: NamespaceObj) => NamespaceInfo,
): (namespace: string) => NamespaceInfo {
  const byName = new Map<string, NamespaceInfo>();
  for (const ns of s.namespaces) if (!byName.has(ns.name)) byName.set(ns.name, info(ns));
  return (namespace) => {
    let hit = byName.get(namespace);
    if (!hit) byName.set(namespace, (hit = namespaceInfo(namespace, namespaceLabels(s, namespace))));
    return hit;
  };
}

export type Draft = Omit<Identity, 'id'>;

/** A pod's own part of its identity keys: labels and named ports. Pods of equal labels
 *  and ports share one (most pods do), so it holds what their identities have in common. */
export interface PodPart {
  text: string;
  ports: ReadonlyMap<string, number>;
  /** Its part of an identity's description: sorted labels, then the named ports. */
  description: string;
}

/** Finds a part by its raw key (equal keys: equal parts), or makes and keeps it. */
export type PartInterner = (raw: string, make: () => PodPart) => PodPart;

export function podPart(pod: PodObj, intern: PartInterner = (_, make) => make()): PodPart {
  // The raw key is the labels and ports as given (JSON is unambiguous); two orders of
  // one label set miss each other, which costs a second equal part, never a wrong one.
  return intern(JSON.stringify(pod.labels) + JSON.stringify(pod.ports), () => {
    const ports = namedPorts(pod.ports);
    const sorted = [...ports].sort();
    const portText = sorted.map(([k, v]) => `${k}=${v}`).join(',');
    return {
      text: [JSON.stringify(sortedLabels(pod.labels)), JSON.stringify(sorted)].join(','),
      ports,
      description: [labelText(pod.labels), portText ? ` ports:${portText}` : ''].join(''),
    };
  });
}

// Keys are the JSON of [kind, network, namespace, namespace labels, labels, named
// ports], written out piecewise so each part is serialized once. Strings kept per pod
// or identity are joined, not concatenated: a join is one flat string, a template a
// tree of cons strings that stays allocated beside its flattened copy.
export function podKey(pod: PodObj, ns: NamespaceInfo, part: PodPart, network?: string): string {
  // On the primary network (every pod has a key there) the namespace's head is made once.
  if (network === undefined) return [ns.podKeyHead, part.text, ']'].join(',');
  return ['["pod"', JSON.stringify(network), JSON.stringify(pod.namespace), ns.keyText, part.text, ']'].join(',');
}

export function nodeKey(node: NodeObj): string {
  return ['["node","","",[]', JSON.stringify(sortedLabels(node.labels)), '[]]'].join(',');
}

/** An identity's content before a set numbers it: id 0, which no identity has. The
 *  first identity set that numbers it takes the object itself (see assignIdentities). */
export type Unnumbered = Identity;

/** The identity a pod has on a network (primary when absent). Written out, no spread:
 *  a full compile makes one per identity (100k). */
export function podDraft(
  pod: PodObj,
  ns: NamespaceInfo,
  network: string | undefined,
  part: PodPart,
  key: string,
): Unnumbered {
  const endpoint: Endpoint = { kind: 'pod', pod };
  const description = [network ? `${network}:` : '', pod.namespace, '/', part.description].join('');
  const { labels } = pod;
  const namespaceLabels = ns.labels;
  const namedPorts = part.ports;
  return network === undefined
    ? { id: 0, key, endpoint, namespaceLabels, labels, namedPorts, description }
    : { id: 0, key, endpoint, network, namespaceLabels, labels, namedPorts, description };
}

export function nodeDraft(node: NodeObj, key = nodeKey(node)): Unnumbered {
  return {
    id: 0,
    key,
    endpoint: { kind: 'node', node },
    namespaceLabels: {},
    labels: node.labels,
    namedPorts: new Map(),
    description: ['node/', labelText(node.labels)].join(''),
  };
}
