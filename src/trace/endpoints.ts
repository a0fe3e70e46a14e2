// Endpoints synthesized from a snapshot, standing in for interface discovery where
// there are no interfaces (compile and trace on a state directory): every pod of a
// node gets an "nf<hash>" interface (and one per secondary network), the node one
// host interface. Ifindexes are unique across the whole snapshot and never 1 (the
// loopback index test runs use).
import { hash32 } from '../compile/hash';
import type { DiscoveredEndpoint } from '../compile/endpoint';
import type { Snapshot } from '../model/types';

const FIRST_IFINDEX = 100;

function ifname(key: string): string {
  return `nf${hash32(key).toString(16).padStart(8, '0').slice(0, 11)}`;
}

/** Every node name of the snapshot: Node objects and the nodes pods run on. */
export function nodeNames(s: Snapshot): string[] {
  const names = new Set([...s.nodes.map((n) => n.name), ...s.pods.flatMap((p) => (p.nodeName ? [p.nodeName] : []))]);
  return [...names].sort();
}

export function synthesizeEndpoints(s: Snapshot, nodeName: string): DiscoveredEndpoint[] {
  const all: (DiscoveredEndpoint & { node: string })[] = [];
  for (const node of s.nodes.map((n) => n.name).sort()) all.push({ ifname: 'nf-host', ifindex: 0, kind: 'host', node });
  const pods = [...s.pods]
    .filter((p) => !p.hostNetwork && p.nodeName)
    .sort((a, b) => (`${a.namespace}/${a.name}` < `${b.namespace}/${b.name}` ? -1 : 1));
  for (const p of pods) {
    const name = `${p.namespace}/${p.name}`;
    all.push({ ifname: ifname(name), ifindex: 0, kind: 'pod', pod: name, node: p.nodeName! });
    for (const n of p.networks) {
      all.push({
        ifname: ifname(`${name}/${n.network}`),
        ifindex: 0,
        kind: 'secondary',
        pod: name,
        network: n.network,
        node: p.nodeName!,
      });
    }
  }
  return all
    .map(({ node, ...ep }, i) => ({ ...ep, ifindex: FIRST_IFINDEX + i, node }))
    .filter((ep) => ep.node === nodeName)
    .map(({ node: _node, ...ep }) => ep);
}
