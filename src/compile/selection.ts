// Which identities a selector picks. Selectors are evaluated per identity, never per
// pod, and memoized per selector; identities are indexed by network and namespace, so
// a peer naming a namespace only looks at that namespace's identities.
import type { Peer, Subject } from '../model/rules';
import { matchesSelector } from '../selectors/labels';
import { type PodSelection, selectionMatches } from '../selectors/resolve';
import type { Draft, Identity } from './identities';

export type LabelPeer = Extract<Peer, { kind: 'pods' | 'nodes' }>;

interface NetworkIndex {
  all: Identity[]; // by id, as Identities.list
  pods: Identity[];
  nodes: Identity[];
  byNamespace: Map<string, Identity[]>;
}

/** Pod selection semantics (podMatches) over an identity or an endpoint's draft. */
function podSelected(sel: PodSelection, d: Draft): boolean {
  return (
    d.endpoint.kind === 'pod' &&
    !d.endpoint.pod.hostNetwork &&
    selectionMatches(sel, d.endpoint.pod.namespace, () => d.namespaceLabels, d.labels)
  );
}

/** Does a policy subject select the endpoint an identity or draft stands for? */
export function subjectSelects(subject: Subject, d: Draft): boolean {
  if (subject.kind === 'nodes') return d.endpoint.kind === 'node' && matchesSelector(subject.nodeSelector, d.labels);
  return podSelected(subject, d);
}

export class Selection {
  private readonly nets = new Map<string, NetworkIndex>();
  private readonly memo = new Map<string, readonly number[]>();

  /** `identities`: every identity, by id. */
  constructor(identities: readonly Identity[]) {
    for (let i = 0; i < identities.length; i++) {
      const id = identities[i];
      const net = this.index(id.network);
      net.all.push(id);
      if (id.endpoint.kind === 'node') {
        net.nodes.push(id);
        continue;
      }
      net.pods.push(id);
      const ns = id.endpoint.pod.namespace;
      const group = net.byNamespace.get(ns);
      if (group) group.push(id);
      else net.byNamespace.set(ns, [id]);
    }
  }

  private index(network: string | undefined): NetworkIndex {
    const key = network ?? '';
    let net = this.nets.get(key);
    if (!net) this.nets.set(key, (net = { all: [], pods: [], nodes: [], byNamespace: new Map() }));
    return net;
  }

  /** Identities on a network (undefined = primary), by id. */
  onNetwork(network: string | undefined): readonly Identity[] {
    return this.index(network).all;
  }

  /** Ids (ascending) of the identities on `network` that a label-based peer selects. */
  peer(peer: LabelPeer, network: string | undefined): readonly number[] {
    const key = `${network ?? ''}\0${JSON.stringify(peer)}`;
    let ids = this.memo.get(key);
    if (!ids) {
      const net = this.index(network);
      const picked =
        peer.kind === 'nodes'
          ? net.nodes.filter((i) => matchesSelector(peer.nodeSelector, i.labels))
          : this.podCandidates(net, peer).filter((i) => podSelected(peer, i));
      ids = picked.map((i) => i.id).sort((a, b) => a - b);
      this.memo.set(key, ids);
    }
    return ids;
  }

  /** The identities a pod selection can pick: its namespace's, or those of the
   *  namespaces its namespace selector matches (one match per namespace). */
  private podCandidates(net: NetworkIndex, sel: PodSelection): readonly Identity[] {
    if (sel.namespace !== undefined) return net.byNamespace.get(sel.namespace) ?? [];
    const nsSel = sel.namespaceSelector;
    if (!nsSel) return net.pods;
    return [...net.byNamespace.values()].filter((g) => matchesSelector(nsSel, g[0].namespaceLabels)).flat();
  }
}
