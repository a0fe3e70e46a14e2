// Identities: every pod address maps to the identity of its (network, namespace,
// namespace labels, pod labels, named ports) and every node address (hostNetwork pods
// are their node) to the identity of its node labels. Ids are content hashes, so adding
// a pod with a label set that already exists costs one nf_ident_exact entry.
// A pod's addresses on a secondary network get an identity of that network: only
// MultiNetworkPolicies for that network select them (as the reference resolves them).
import type { ContainerPort, Labels, NamespaceObj, NodeObj, PodObj, Snapshot } from '../model/types';
import { type Endpoint, namespaceLabels, nodeOfPod } from '../selectors/resolve';
import { type IdKind, assignIds } from './hash';

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
}

export function namespaceInfo(labels: Labels): NamespaceInfo {
  return { labels, keyText: JSON.stringify(sortedLabels(labels)) };
}

/** Namespace name -> labels as namespaceLabels() finds them (the first object of a
 *  name); `info` may be memoized per namespace object. */
export function namespaceIndex(s: Snapshot, info: (ns: NamespaceObj) => NamespaceInfo): (namespace: string) => NamespaceInfo {
  const byName = new Map<string, NamespaceInfo>();
  for (const ns of s.namespaces) if (!byName.has(ns.name)) byName.set(ns.name, info(ns));
  return (namespace) => {
    let hit = byName.get(namespace);
    if (!hit) byName.set(namespace, (hit = namespaceInfo(namespaceLabels(s, namespace))));
    return hit;
  };
}

export type Draft = Omit<Identity, 'id'>;

/** A pod's own part of its identity keys: labels and named ports. */
export interface PodPart {
  text: string;
  ports: Map<string, number>;
}

function podPart(pod: PodObj): PodPart {
  const ports = namedPorts(pod.ports);
  return { text: `${JSON.stringify(sortedLabels(pod.labels))},${JSON.stringify([...ports].sort())}`, ports };
}

/** What the compiler derives from one pod object. A Compiler keeps one per pod object,
 *  so an unchanged pod costs a lookup (its key strings, and their hashes, are reused). */
export class PodFacts {
  readonly part: PodPart;
  private owned?: { nsText: string; key: string; owners: Owner[] };
  private fullName?: string;

  constructor(readonly pod: PodObj) {
    this.part = podPart(pod);
  }

  /** "ns/name", as endpoints name pods. */
  get name(): string {
    return (this.fullName ??= `${this.pod.namespace}/${this.pod.name}`);
  }

  /** Its primary identity key in namespace `ns` and its primary addresses under it. */
  primary(ns: NamespaceInfo, addrHex: (ip: string) => string): { key: string; owners: Owner[] } {
    if (this.owned?.nsText !== ns.keyText) {
      const { pod } = this;
      const key = podKey(pod, ns, this.part);
      this.owned = { nsText: ns.keyText, key, owners: pod.ips.map((ip) => ({ ip, hex: addrHex(ip), key, pod, node: pod.nodeName })) };
    }
    return this.owned;
  }
}

// Keys are the JSON of [kind, network, namespace, namespace labels, labels, named
// ports], written out piecewise so each part is serialized once.
function podKey(pod: PodObj, ns: NamespaceInfo, part: PodPart, network?: string): string {
  return `["pod",${JSON.stringify(network ?? '')},${JSON.stringify(pod.namespace)},${ns.keyText},${part.text}]`;
}

function nodeKey(node: NodeObj): string {
  return `["node","","",[],${JSON.stringify(sortedLabels(node.labels))},[]]`;
}

/** The identity a pod has on a network (primary when absent). */
export function podDraft(pod: PodObj, ns: NamespaceInfo, network: string | undefined, part: PodPart): Draft {
  const portText = [...part.ports].sort().map(([k, v]) => `${k}=${v}`).join(',');
  return {
    key: podKey(pod, ns, part, network),
    endpoint: { kind: 'pod', pod },
    ...(network !== undefined && { network }),
    namespaceLabels: ns.labels,
    labels: pod.labels,
    namedPorts: part.ports,
    description: `${network ? `${network}:` : ''}${pod.namespace}/${labelText(pod.labels)}${portText ? ` ports:${portText}` : ''}`,
  };
}

export function nodeDraft(node: NodeObj): Draft {
  return {
    key: nodeKey(node),
    endpoint: { kind: 'node', node },
    namespaceLabels: {},
    labels: node.labels,
    namedPorts: new Map(),
    description: `node/${labelText(node.labels)}`,
  };
}

/** An address with its owner's identity key; `resolved` keeps the AddressOwner it
 *  last resolved to (reused while the key gets the same id). */
interface Owner {
  ip: string;
  hex: string; // of the address
  key: string;
  pod?: PodObj;
  node?: string;
  resolved?: AddressOwner;
}

/** Every address owner and the identity keys they use (drafts built on demand, in
 *  first-use order). O(pods): a Compiler passes a `part` memoized per pod object. */
export interface Collected {
  drafts: Map<string, () => Draft>;
  owners: Owner[];
}

export function collectIdentities(
  snapshot: Snapshot,
  nsInfo: (namespace: string) => NamespaceInfo,
  facts: (pod: PodObj) => PodFacts,
  addrHex: (ip: string) => string,
): Collected {
  const drafts = new Map<string, () => Draft>();
  const owners: Owner[] = [];
  // Most pods share a label set with an earlier one: only the first builds its draft.
  const addPod = (pod: PodObj, ns: NamespaceInfo, part: PodPart, key: string, network?: string): string => {
    if (!drafts.has(key)) drafts.set(key, () => podDraft(pod, ns, network, part));
    return key;
  };
  const addNode = (node: NodeObj): string => {
    const key = nodeKey(node);
    if (!drafts.has(key)) drafts.set(key, () => nodeDraft(node));
    return key;
  };

  // Address owners in the reference's lookup order: pods, nodes, hostNetwork pods
  // (their node; a stand-in node when the node is unknown), then secondary networks.
  const pods = snapshot.pods.filter((p) => !p.hostNetwork);
  for (const pod of pods) {
    const ns = nsInfo(pod.namespace);
    const f = facts(pod);
    const primary = f.primary(ns, addrHex);
    addPod(pod, ns, f.part, primary.key);
    for (const o of primary.owners) owners.push(o);
  }
  for (const node of snapshot.nodes) {
    const key = addNode(node);
    for (const ip of node.addresses) owners.push({ ip, hex: addrHex(ip), key, node: node.name });
  }
  for (const pod of snapshot.pods.filter((p) => p.hostNetwork)) {
    const node = nodeOfPod(snapshot, pod);
    if (!node) continue;
    const key = addNode(node);
    for (const ip of pod.ips) owners.push({ ip, hex: addrHex(ip), key, node: node.name });
  }
  for (const pod of pods) {
    for (const net of pod.networks) {
      const ns = nsInfo(pod.namespace);
      const { part } = facts(pod);
      const key = addPod(pod, ns, part, podKey(pod, ns, part, net.network), net.network);
      for (const ip of net.ips) owners.push({ ip, hex: addrHex(ip), key, pod, node: pod.nodeName });
    }
  }
  return { drafts, owners };
}

/** Identities with their ids; depends only on the draft keys. */
export interface IdentitySet {
  list: Identity[];
  byId: ReadonlyMap<number, Identity>;
  idOf: ReadonlyMap<string, number>;
}

export function assignIdentities(drafts: Collected['drafts'], hash: (kind: IdKind, key: string) => number): IdentitySet {
  const idOf = assignIds(drafts.keys(), 'identity', hash);
  const list: Identity[] = [...drafts.values()].map((make) => {
    const draft = make();
    return { id: idOf.get(draft.key)!, ...draft };
  });
  list.sort((a, b) => a.id - b.id);
  return { list, byId: new Map(list.map((i) => [i.id, i])), idOf };
}

/** Address (key hex) -> owner; a second owner of an address with another identity is an error. */
export function ownAddresses(owners: Owner[], idOf: ReadonlyMap<string, number>): Pick<Identities, 'byAddress' | 'errors'> {
  const byAddress = new Map<string, AddressOwner>();
  const errors: string[] = [];
  for (const o of owners) {
    const prev = byAddress.get(o.hex);
    const identity = idOf.get(o.key)!;
    if (prev) {
      // Node addresses shared with hostNetwork pods are expected; anything else is a conflict.
      if (prev.identity !== identity) errors.push(`assign identity ${o.ip}: address already owned by ${ownerName(prev)}`);
      continue;
    }
    if (o.resolved?.identity !== identity) o.resolved = { ip: o.ip, identity, pod: o.pod, node: o.node };
    byAddress.set(o.hex, o.resolved);
  }
  return { byAddress, errors };
}

function ownerName(o: AddressOwner): string {
  return o.pod ? `pod ${o.pod.namespace}/${o.pod.name}` : `node ${o.node ?? '?'}`;
}
