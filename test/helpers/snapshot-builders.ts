// Small builders for hand-made Snapshots in compile/trace tests.
import type { DiscoveredEndpoint } from '../../src/compile/endpoint';
import type { Peer, Policy, PortSpec, Rule } from '../../src/model/rules';
import { emptySnapshot } from '../../src/model/snapshot';
import type { ContainerPort, NodeObj, PodObj, Snapshot } from '../../src/model/types';

export function namespace(name: string, labels: Record<string, string> = {}) {
  return { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } };
}

export function pod(
  ns: string,
  name: string,
  ips: string[],
  labels: Record<string, string> = {},
  opts: { nodeName?: string; ports?: ContainerPort[]; hostNetwork?: boolean } = {},
): PodObj {
  return {
    namespace: ns,
    name,
    labels,
    annotations: {},
    nodeName: opts.nodeName ?? 'n1',
    hostNetwork: opts.hostNetwork ?? false,
    ports: opts.ports ?? [],
    ips,
    networks: [],
  };
}

export function node(name: string, addresses: string[], labels: Record<string, string> = {}): NodeObj {
  return { name, addresses, labels: { 'kubernetes.io/hostname': name, ...labels } };
}

export function rule(
  direction: Rule['direction'],
  index: number,
  peers: Peer[],
  ports: PortSpec[] | null,
  action: Rule['action'] = 'allow',
): Rule {
  return { direction, action, peers, ports, index };
}

/** A NetworkPolicy selecting `podSelector` pods of `ns`, isolating the directions of its rules. */
export function netpol(
  ns: string,
  name: string,
  podSelector: Record<string, string>,
  rules: Rule[],
  isolates?: Policy['isolates'],
): Policy {
  return {
    ref: { kind: 'NetworkPolicy', namespace: ns, name },
    tier: 'netpol',
    priority: 0,
    subject: { kind: 'pods', namespace: ns, podSelector: { matchLabels: podSelector } },
    isolates: isolates ?? [...new Set(rules.map((r) => r.direction))],
    rules,
  };
}

export function cnp(
  name: string,
  tier: 'admin' | 'baseline',
  priority: number,
  podSelector: Record<string, string>,
  rules: Rule[],
): Policy {
  return {
    ref: { kind: 'ClusterNetworkPolicy', name },
    tier,
    priority,
    subject: { kind: 'pods', namespaceSelector: {}, podSelector: { matchLabels: podSelector } },
    isolates: [],
    rules,
  };
}

export function snapshot(parts: Partial<Pick<Snapshot, 'namespaces' | 'pods' | 'nodes' | 'policies'>>): Snapshot {
  const s = emptySnapshot();
  s.config.privileged.enabled = false;
  return { ...s, ...parts };
}

export const podsPeer = (namespace: string, labels: Record<string, string>): Peer => ({
  kind: 'pods',
  namespace,
  podSelector: { matchLabels: labels },
});

/** n1's pod interfaces, with ifindexes derived from the pod name's number so they stay put as pods come and go. */
export function n1Endpoints(s: Snapshot): DiscoveredEndpoint[] {
  return s.pods
    .filter((p) => p.nodeName === 'n1')
    .map((p) => {
      const n = /-(\d+)$/.exec(p.name);
      const ifindex = 100 + (n ? Number(n[1]) : 500);
      return { ifname: `veth${ifindex}`, ifindex, kind: 'pod' as const, pod: `${p.namespace}/${p.name}` };
    });
}
