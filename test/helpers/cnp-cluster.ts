// Seeded random clusters of raw Kubernetes objects for the ClusterNetworkPolicy oracle
// test (test/unit/cnp-oracle.test.ts): namespaces, two nodes, pods (dual-stack, now and
// then single-stack or hostNetwork) with labels and named container ports,
// ClusterNetworkPolicies of both tiers with distinct priorities and Accept/Deny/Pass
// rules, NetworkPolicies; and the probes (protocol, port, family) worth asking about:
// every port a rule or container names, range boundaries and their neighbours, one port
// nothing names, now and then ICMP/ICMPv6.
import { dump } from 'js-yaml';
import type {
  CnpPeer,
  CnpProtocol,
  CnpRule,
  Labels,
  NpPeer,
  NpPort,
  NpRule,
  Packet,
  RawCnp,
  RawNamespace,
  RawNode,
  RawNp,
  RawObject,
  RawPod,
  RawPort,
  RawSelector,
} from './cnp-oracle';
import { Rng } from './rng';

const PROTOCOLS = ['TCP', 'UDP', 'SCTP'] as const;
const PORTS = [53, 80, 81, 443, 1000, 1024, 8080, 9000, 9090];
const PORT_NAMES = ['http', 'web', 'dns', 'metrics', 'stream'];
const POD_LABELS: [string, string[]][] = [
  ['app', ['web', 'db', 'api']],
  ['role', ['fe', 'be']],
];
const NS_LABELS: [string, string[]][] = [
  ['team', ['red', 'blue']],
  ['env', ['prod', 'dev']],
];
const NODES: { name: string; labels: Labels; ips: string[] }[] = [
  { name: 'node-a', labels: { zone: 'z1', pool: 'gp' }, ips: ['192.168.0.1', 'fd00:10::1'] },
  { name: 'node-b', labels: { zone: 'z2' }, ips: ['192.168.0.2', 'fd00:10::2'] },
];

function labels(r: Rng, space: [string, string[]][]): Labels {
  const out: Labels = {};
  for (const [k, vs] of space) if (r.chance(0.7)) out[k] = r.pick(vs);
  return out;
}

function selector(r: Rng, space: [string, string[]][]): RawSelector {
  if (r.chance(0.2)) return {};
  const sel: RawSelector = {};
  if (r.chance(0.6)) {
    const [k, vs] = r.pick(space);
    sel.matchLabels = { [k]: r.pick(vs) };
  }
  if (sel.matchLabels && r.chance(0.15)) {
    const [k, vs] = r.pick(space);
    sel.matchLabels[k] = r.pick(vs);
  }
  if (!sel.matchLabels || r.chance(0.3)) {
    sel.matchExpressions = Array.from({ length: r.chance(0.2) ? 2 : 1 }, () => {
      const [key, vs] = r.pick(space);
      const operator = r.pick(['In', 'NotIn', 'Exists', 'DoesNotExist']);
      return operator === 'In' || operator === 'NotIn'
        ? { key, operator, values: r.sample(vs, r.int(1, 2)) }
        : { key, operator };
    });
  }
  return sel;
}

interface Ctx {
  r: Rng;
  nsNames: string[];
  pods: RawPod[];
  nsSpace: [string, string[]][];
  /** CIDRs covering some pods, nodes, or nothing of the cluster. */
  cidrs: string[];
  /** Port numbers the policies use (for probes). */
  ports: Set<number>;
}

function nsSelector(c: Ctx): RawSelector {
  return selector(c.r, c.nsSpace);
}

function cnpPort(c: Ctx): CnpProtocol {
  const { r } = c;
  const names = [...new Set(c.pods.flatMap((p) => p.spec.containers.flatMap((k) => k.ports ?? [])).map((p) => p.name))];
  if (r.chance(0.2)) return { destinationNamedPort: r.chance(0.8) && names.length ? r.pick(names)! : 'nowhere' };
  const key = r.pick(['tcp', 'udp', 'sctp'] as const);
  let destinationPort;
  if (r.chance(0.5)) {
    const number = r.pick(PORTS);
    c.ports.add(number);
    destinationPort = { number };
  } else {
    const edge = r.next();
    const start = edge < 0.1 ? 1 : edge < 0.2 ? 65535 - r.pick([1, 2, 100]) : r.pick(PORTS) + r.int(-2, 2);
    const end = edge >= 0.1 && edge < 0.2 ? 65535 : start + r.pick([1, 2, 30, 1000]);
    for (const p of [start - 1, start, end, end + 1]) c.ports.add(p);
    destinationPort = { range: { start, end } };
  }
  return { [key]: { destinationPort } } as CnpProtocol;
}

function cnpPeer(c: Ctx, egress: boolean): CnpPeer {
  const { r } = c;
  const kind = r.pick(egress ? ['namespaces', 'pods', 'pods', 'nodes', 'networks'] : ['namespaces', 'pods']);
  if (kind === 'namespaces') return { namespaces: nsSelector(c) };
  if (kind === 'nodes')
    return {
      nodes: selector(r, [
        ['zone', ['z1', 'z2']],
        ['pool', ['gp']],
      ]),
    };
  if (kind === 'networks') return { networks: r.sample(c.cidrs, r.int(1, 2)) };
  const pods: CnpPeer['pods'] = { podSelector: selector(r, POD_LABELS) };
  if (r.chance(0.6)) pods.namespaceSelector = nsSelector(c);
  return { pods };
}

function cnpRule(c: Ctx, egress: boolean, i: number): CnpRule {
  const { r } = c;
  const peers = Array.from({ length: r.int(1, 2) }, () => cnpPeer(c, egress));
  const rule: CnpRule = { action: r.pick(['Accept', 'Deny', 'Pass'] as const) };
  if (r.chance(0.5)) rule.name = `rule-${i}`;
  rule[egress ? 'to' : 'from'] = peers;
  if (r.chance(0.65)) {
    // destinationNamedPort cannot stand beside nodes or networks peers (API validation).
    const addressPeer = peers.some((p) => p.nodes || p.networks);
    rule.protocols = Array.from({ length: r.int(1, 3) }, () => cnpPort(c)).filter(
      (p) => !(addressPeer && 'destinationNamedPort' in p),
    );
    if (!rule.protocols.length) delete rule.protocols;
  }
  return rule;
}

function cnp(c: Ctx, i: number, priority: number): RawCnp {
  const { r } = c;
  const subject: CnpPeer = r.chance(0.4)
    ? { namespaces: nsSelector(c) }
    : {
        pods: { podSelector: selector(r, POD_LABELS), ...(r.chance(0.6) && { namespaceSelector: nsSelector(c) }) },
      };
  const spec: RawCnp['spec'] = { tier: r.chance(0.6) ? 'Admin' : 'Baseline', priority, subject };
  const nIn = r.int(0, 3);
  const nEg = r.int(0, 3);
  if (nIn || r.chance(0.2)) spec.ingress = Array.from({ length: nIn }, (_, k) => cnpRule(c, false, k));
  if (nEg || r.chance(0.2)) spec.egress = Array.from({ length: nEg }, (_, k) => cnpRule(c, true, k));
  return { kind: 'ClusterNetworkPolicy', metadata: { name: `cnp-${i}` }, spec };
}

function npPeer(c: Ctx): NpPeer {
  const { r } = c;
  const k = r.int(0, 3);
  if (k === 0) return { podSelector: selector(r, POD_LABELS) };
  if (k === 1) return { namespaceSelector: nsSelector(c) };
  if (k === 2) return { podSelector: selector(r, POD_LABELS), namespaceSelector: nsSelector(c) };
  const [cidr, except] = r.pick(ipBlocks(c));
  return { ipBlock: except.length && r.chance(0.7) ? { cidr, except } : { cidr } };
}

function npPort(c: Ctx): NpPort {
  const { r } = c;
  const p: NpPort = {};
  if (r.chance(0.7)) p.protocol = r.pick(PROTOCOLS);
  const names = [...new Set(c.pods.flatMap((q) => q.spec.containers.flatMap((k) => k.ports ?? [])).map((q) => q.name))];
  const k = r.int(0, 3);
  if (k === 1) {
    p.port = r.pick(PORTS);
    c.ports.add(p.port);
  } else if (k === 2) {
    p.port = r.pick(PORTS);
    p.endPort = p.port + r.pick([0, 1, 100]);
    for (const x of [p.port - 1, p.port, p.endPort, p.endPort + 1]) c.ports.add(x);
  } else if (k === 3 && names.length) p.port = r.pick(names)!;
  return p;
}

function npRule(c: Ctx, egress: boolean): NpRule {
  const { r } = c;
  const rule: NpRule = {};
  const key = egress ? 'to' : 'from';
  const pk = r.int(0, 3);
  if (pk === 1) rule[key] = [];
  else if (pk >= 2) rule[key] = Array.from({ length: r.int(1, 2) }, () => npPeer(c));
  const ports = r.int(0, 2);
  if (ports === 1) rule.ports = [];
  else if (ports === 2) rule.ports = Array.from({ length: r.int(1, 2) }, () => npPort(c));
  return rule;
}

function np(c: Ctx, i: number): RawNp {
  const { r } = c;
  const spec: RawNp['spec'] = {};
  if (r.chance(0.9)) spec.podSelector = selector(r, POD_LABELS);
  const t = r.int(0, 4);
  if (t === 1) spec.policyTypes = [];
  else if (t === 2) spec.policyTypes = ['Ingress'];
  else if (t === 3) spec.policyTypes = ['Egress'];
  else if (t === 4) spec.policyTypes = ['Ingress', 'Egress'];
  const nIn = r.int(0, 2);
  const nEg = r.int(0, 2);
  if (nIn || r.chance(0.3)) spec.ingress = Array.from({ length: nIn }, () => npRule(c, false));
  if (nEg || r.chance(0.3)) spec.egress = Array.from({ length: nEg }, () => npRule(c, true));
  return { kind: 'NetworkPolicy', metadata: { name: `np-${i}`, namespace: r.pick(c.nsNames) }, spec };
}

/** ipBlock cidr and strictly narrower excepts of the same family. */
function ipBlocks(c: Ctx): [string, string[]][] {
  // Pod addresses (never a node's): the first three groups of the IPv6 ones are spelled out.
  const ips = c.pods.filter((p) => !p.spec.hostNetwork).flatMap((p) => (p.status.podIPs ?? []).map((x) => x.ip));
  const v4 = ips.filter((ip) => !ip.includes(':'));
  const v6 = ips.filter((ip) => ip.includes(':'));
  const out: [string, string[]][] = [
    ['10.244.0.0/16', ['10.244.1.0/24', '10.244.0.0/25']],
    ['0.0.0.0/0', ['10.244.2.0/24']],
    ['fd00::/8', ['fd00:244:1::/48']],
    ['::/0', ['fd00:10::/32']],
    ['192.168.0.0/24', ['192.168.0.2/32']],
    ['10.244.2.9/23', ['10.244.3.0/24']],
  ];
  for (const ip of v4.slice(0, 3)) out.push([`${ip.split('.').slice(0, 3).join('.')}.0/24`, [`${ip}/32`]]);
  for (const ip of v6.slice(0, 3)) out.push([`${ip.split(':').slice(0, 3).join(':')}::/48`, [`${ip}/128`]]);
  return out;
}

export interface Cluster {
  objects: RawObject[];
  probes: Packet[];
}

export function generateCluster(seed: number): Cluster {
  const r = new Rng(seed);
  const nsCount = r.int(2, 4);
  const nsNames = Array.from({ length: nsCount }, (_, i) => `ns${i}`);
  const namespaces: RawNamespace[] = nsNames.map((name) => ({
    kind: 'Namespace',
    metadata: { name, labels: labels(r, NS_LABELS) },
  }));
  const nodes: RawNode[] = NODES.map((n) => ({
    kind: 'Node',
    metadata: { name: n.name, labels: n.labels },
    status: { addresses: n.ips.map((address) => ({ type: 'InternalIP', address })) },
  }));
  const usedHosts = new Set<number>();
  const pods: RawPod[] = Array.from({ length: r.int(3, 7) }, (_, i): RawPod => {
    const nsIdx = r.int(0, nsCount - 1);
    const node = r.pick(NODES);
    const hostNetwork = r.chance(0.08);
    let host = r.int(1, 254);
    while (usedHosts.has(nsIdx * 1000 + host)) host = r.int(1, 254);
    usedHosts.add(nsIdx * 1000 + host);
    const v4 = `10.244.${nsIdx}.${host}`;
    const spelling = r.next();
    const v6 =
      spelling < 0.1
        ? `fd00:0244:${nsIdx}:0:0:0:0:${host.toString(16)}`
        : spelling < 0.2
          ? `FD00:244:${nsIdx}::${host.toString(16).toUpperCase()}`
          : `fd00:244:${nsIdx}::${host.toString(16)}`;
    const stack = r.next();
    const ips = hostNetwork ? node.ips : stack < 0.1 ? [v4] : stack < 0.15 ? [v6] : [v4, v6];
    // Container ports: names unique in the pod, (port, protocol) unique in the pod.
    const ports: RawPort[] = [];
    for (const name of r.sample(PORT_NAMES, r.int(0, 3))) {
      const containerPort = r.pick(PORTS);
      const protocol = r.pick(PROTOCOLS);
      if (ports.some((p) => p.containerPort === containerPort && (p.protocol ?? 'TCP') === protocol)) continue;
      ports.push(protocol === 'TCP' && r.chance(0.5) ? { name, containerPort } : { name, containerPort, protocol });
    }
    const split = r.int(0, ports.length);
    const containers = [{ name: 'main', ports: ports.slice(0, split) }];
    if (split < ports.length || r.chance(0.2)) containers.push({ name: 'side', ports: ports.slice(split) });
    // Port names are unique per container (API validation), so one name may serve two
    // protocols from two containers (as "dns" on UDP and TCP does).
    const twin = ports[0];
    if (twin && split > 0 && r.chance(0.15)) {
      const protocol = r.pick(PROTOCOLS.filter((x) => x !== (twin.protocol ?? 'TCP')));
      const containerPort = r.pick(PORTS);
      if (!ports.some((p) => p.containerPort === containerPort && (p.protocol ?? 'TCP') === protocol)) {
        containers.push({ name: 'twin', ports: [{ name: twin.name, containerPort, protocol }] });
      }
    }
    return {
      kind: 'Pod',
      metadata: { name: `p${i}`, namespace: nsNames[nsIdx], labels: labels(r, POD_LABELS) },
      spec: { nodeName: node.name, ...(hostNetwork && { hostNetwork: true }), containers },
      status: { podIPs: ips.map((ip) => ({ ip })) },
    };
  });
  const podIps = pods.filter((p) => !p.spec.hostNetwork).flatMap((p) => (p.status.podIPs ?? []).map((x) => x.ip));
  const c: Ctx = {
    r,
    nsNames,
    pods,
    nsSpace: [...NS_LABELS, ['kubernetes.io/metadata.name', nsNames]],
    cidrs: [
      '10.244.0.0/16',
      '10.244.1.0/24',
      '10.244.0.128/25',
      'fd00::/8',
      'fd00:244:1::/48',
      '192.168.0.0/24',
      '192.168.0.1/32',
      'fd00:10::2/128',
      '0.0.0.0/0',
      '::/0',
      '203.0.113.0/24',
      '10.244.1.77/24',
      'fd00:244:2::5/48',
      ...r.sample(podIps, 3).map((ip) => (ip.includes(':') ? `${ip}/128` : `${ip}/32`)),
    ],
    ports: new Set(),
  };
  const priorities = r.sample(
    Array.from({ length: 1001 }, (_, i) => i),
    6,
  );
  const cnps = Array.from({ length: r.int(0, 5) }, (_, i) => cnp(c, i, priorities[i]));
  const nps = Array.from({ length: r.int(0, 3) }, (_, i) => np(c, i));

  // Probes: ports the rules name (range boundaries and their neighbours), container ports
  // (named ports), and one port nothing names.
  const candidates: Packet[] = [];
  for (const port of c.ports) {
    if (port >= 1 && port <= 65535) for (const protocol of PROTOCOLS) candidates.push({ protocol, port });
  }
  for (const p of pods)
    for (const k of p.spec.containers)
      for (const cp of k.ports ?? []) {
        candidates.push({ protocol: (cp.protocol ?? 'TCP') as Packet['protocol'], port: cp.containerPort });
      }
  const probes = r.sample(candidates, 4);
  probes.push({ protocol: r.pick(PROTOCOLS), port: r.int(1, 65535) });
  for (const p of probes) p.family = r.chance(0.5) ? 4 : 6;
  // Now and then a ping: only rules without protocols (ports) match it.
  if (r.chance(0.15))
    probes[probes.length - 1] = r.chance(0.5)
      ? { protocol: 'ICMP', port: 0, family: 4 }
      : { protocol: 'ICMPv6', port: 0, family: 6 };
  return { objects: [...namespaces, ...nodes, ...pods, ...cnps, ...nps], probes };
}

const API_VERSIONS: Record<RawObject['kind'], string> = {
  Namespace: 'v1',
  Node: 'v1',
  Pod: 'v1',
  NetworkPolicy: 'networking.k8s.io/v1',
  ClusterNetworkPolicy: 'policy.networking.k8s.io/v1alpha2',
};

/** The objects as one multi-document YAML file. */
export function toYaml(objects: RawObject[]): string {
  return objects.map((o) => dump({ apiVersion: API_VERSIONS[o.kind], ...o }, { noRefs: true })).join('---\n');
}
