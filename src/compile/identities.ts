// Identities: every pod address maps to the identity of its (network, namespace,
// namespace labels, pod labels, named ports) and every node address (hostNetwork pods
// are their node) to the identity of its node labels. Ids are content hashes, so adding
// a pod with a label set that already exists costs one nf_ident_exact entry.
// A pod's addresses on a secondary network get an identity of that network: only
// MultiNetworkPolicies for that network select them (as the reference resolves them).
import type { ContainerPort, Labels, NodeObj, PodObj, Snapshot } from '../model/types';
import { addrToBytes, keyHex } from '../datapath/codecs';
import { type Endpoint, namespaceLabels, nodeOfPod } from '../selectors/resolve';
import { assignIds } from './hash';

export interface Identity {
  id: number;
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

type Draft = Omit<Identity, 'id'>;

function podDraft(pod: PodObj, nsLabels: Labels, network?: string): Draft {
  const ports = namedPorts(pod.ports);
  const portText = [...ports].sort().map(([k, v]) => `${k}=${v}`).join(',');
  return {
    endpoint: { kind: 'pod', pod },
    ...(network !== undefined && { network }),
    namespaceLabels: nsLabels,
    labels: pod.labels,
    namedPorts: ports,
    description: `${network ? `${network}:` : ''}${pod.namespace}/${labelText(pod.labels)}${portText ? ` ports:${portText}` : ''}`,
  };
}

function nodeDraft(node: NodeObj): Draft {
  return {
    endpoint: { kind: 'node', node },
    namespaceLabels: {},
    labels: node.labels,
    namedPorts: new Map(),
    description: `node/${labelText(node.labels)}`,
  };
}

function draftKey(d: Draft): string {
  return JSON.stringify([
    d.endpoint.kind,
    d.network ?? '',
    d.endpoint.kind === 'pod' ? d.endpoint.pod.namespace : '',
    sortedLabels(d.namespaceLabels),
    sortedLabels(d.labels),
    [...d.namedPorts].sort(),
  ]);
}

export function buildIdentities(snapshot: Snapshot): Identities {
  const drafts = new Map<string, Draft>();
  const owners: { ip: string; key: string; pod?: PodObj; node?: string }[] = [];
  const add = (d: Draft): string => {
    const key = draftKey(d);
    if (!drafts.has(key)) drafts.set(key, d);
    return key;
  };

  // Address owners in the reference's lookup order: pods, nodes, hostNetwork pods
  // (their node; a stand-in node when the node is unknown), then secondary networks.
  const pods = snapshot.pods.filter((p) => !p.hostNetwork);
  for (const pod of pods) {
    const key = add(podDraft(pod, namespaceLabels(snapshot, pod.namespace)));
    for (const ip of pod.ips) owners.push({ ip, key, pod, node: pod.nodeName });
  }
  for (const node of snapshot.nodes) {
    const key = add(nodeDraft(node));
    for (const ip of node.addresses) owners.push({ ip, key, node: node.name });
  }
  for (const pod of snapshot.pods.filter((p) => p.hostNetwork)) {
    const node = nodeOfPod(snapshot, pod);
    if (!node) continue;
    const key = add(nodeDraft(node));
    for (const ip of pod.ips) owners.push({ ip, key, node: node.name });
  }
  for (const pod of pods) {
    for (const net of pod.networks) {
      const key = add(podDraft(pod, namespaceLabels(snapshot, pod.namespace), net.network));
      for (const ip of net.ips) owners.push({ ip, key, pod, node: pod.nodeName });
    }
  }

  const ids = assignIds(drafts.keys(), 'identity');
  const list: Identity[] = [...drafts].map(([key, d]) => ({ id: ids.get(key)!, ...d }));
  list.sort((a, b) => a.id - b.id);

  const byAddress = new Map<string, AddressOwner>();
  const errors: string[] = [];
  for (const o of owners) {
    const hex = keyHex(addrToBytes(o.ip));
    const prev = byAddress.get(hex);
    const identity = ids.get(o.key)!;
    if (prev) {
      // Node addresses shared with hostNetwork pods are expected; anything else is a conflict.
      if (prev.identity !== identity) errors.push(`assign identity ${o.ip}: address already owned by ${ownerName(prev)}`);
      continue;
    }
    byAddress.set(hex, { ip: o.ip, identity, pod: o.pod, node: o.node });
  }
  return { list, byId: new Map(list.map((i) => [i.id, i])), byAddress, errors };
}

function ownerName(o: AddressOwner): string {
  return o.pod ? `pod ${o.pod.namespace}/${o.pod.name}` : `node ${o.node ?? '?'}`;
}
