// A seeded, reproducible generator of small random clusters (namespaces, nodes, pods
// with labels and named ports, NetworkPolicies with selectors / ipBlock+except / port
// ranges / named ports, Admin and Baseline ClusterNetworkPolicies with Allow, Deny and
// Pass, node policies; now and then hundreds more rules, so tables span several chunks)
// and of packets between their addresses and outside ones.
import type { L4Protocol, Peer, Policy, PortSpec, Rule, Subject } from '../../src/model/rules';
import { emptySnapshot } from '../../src/model/snapshot';
import type { ContainerPort, LabelSelector, NodeObj, PodObj, Snapshot } from '../../src/model/types';
import type { Packet } from '../../src/reference/evaluate';
import { Rng } from './rng';

const APPS = ['web', 'db', 'api'];
const TIERS = ['fe', 'be'];
const PORTS = [53, 80, 81, 443, 1000, 1023, 1024, 8080, 9000];
const NAMED: ContainerPort[] = [
  { name: 'http', containerPort: 80, protocol: 'TCP' },
  { name: 'http', containerPort: 8080, protocol: 'TCP' },
  { name: 'dns', containerPort: 53, protocol: 'UDP' },
  { name: 'dns', containerPort: 53, protocol: 'TCP' },
  { name: 'stream', containerPort: 9000, protocol: 'SCTP' },
];
const CIDRS: [string, string[]][] = [
  ['10.244.0.0/16', ['10.244.1.0/24', '10.244.2.0/25']],
  ['10.244.1.0/24', ['10.244.1.0/28']],
  ['192.168.0.0/24', ['192.168.0.2/32']],
  ['0.0.0.0/0', ['10.0.0.0/8']],
  ['203.0.113.0/24', []],
  ['fd00::/8', ['fd00:244:1::/48']],
  ['fd00:244::/32', []],
  ['::/0', ['fd00::/8']],
];
const SECONDARY = 'ns0/blue';
const EXTERNAL = ['203.0.113.7', '10.244.9.9', '8.8.8.8', '2001:db8::7', 'fd00:244:9::9'];

function labelSelector(r: Rng, keys: [string, readonly string[]][]): LabelSelector {
  const sel: LabelSelector = {};
  for (const [k, vs] of r.some(keys, 2)) {
    if (r.chance(0.6)) sel.matchLabels = { ...sel.matchLabels, [k]: r.pick(vs) };
    else {
      const op = r.pick(['In', 'NotIn', 'Exists', 'DoesNotExist'] as const);
      const values = op === 'In' || op === 'NotIn' ? r.some(vs, 2) : undefined;
      sel.matchExpressions = [...(sel.matchExpressions ?? []), { key: k, operator: op, ...(values && { values }) }];
    }
  }
  return sel;
}

const podSel = (r: Rng) =>
  labelSelector(r, [
    ['app', APPS],
    ['tier', TIERS],
  ]);
const nsSel = (r: Rng) =>
  labelSelector(r, [
    ['team', ['a', 'b']],
    ['kubernetes.io/metadata.name', ['ns0', 'ns1', 'ns2']],
  ]);
const nodeSel = (r: Rng) => labelSelector(r, [['zone', ['z1', 'z2']]]);

function portSpec(r: Rng, named: boolean): PortSpec {
  const protocol = r.pick(['TCP', 'TCP', 'UDP', 'SCTP'] as const);
  const kind = r.int(0, named ? 3 : 2);
  if (kind === 0) return { protocol };
  if (kind === 1) return { protocol, port: r.pick(PORTS) };
  if (kind === 2) {
    const port = r.pick(PORTS);
    return { protocol, port, endPort: port + r.int(0, 1200) };
  }
  return { protocol, name: r.pick(['http', 'dns', 'stream']) };
}

function ports(r: Rng): PortSpec[] | null {
  if (r.chance(0.35)) return null;
  return Array.from({ length: r.int(1, 3) }, () => portSpec(r, true));
}

function cidrPeer(r: Rng): Peer {
  const [cidr, excepts] = r.pick(CIDRS);
  return { kind: 'cidr', cidr, except: r.some(excepts, 2) };
}

function netpolPeer(r: Rng, ns: string): Peer {
  switch (r.int(0, 3)) {
    case 0:
      return { kind: 'pods', namespace: ns, podSelector: podSel(r) };
    case 1:
      return { kind: 'pods', namespaceSelector: nsSel(r) };
    case 2:
      return { kind: 'pods', namespaceSelector: nsSel(r), podSelector: podSel(r) };
    default:
      return cidrPeer(r);
  }
}

function cnpPeer(r: Rng, egress: boolean): Peer {
  switch (r.int(0, egress ? 4 : 2)) {
    case 0:
      return { kind: 'pods', namespaceSelector: nsSel(r) };
    case 1:
      return { kind: 'pods', namespaceSelector: nsSel(r), podSelector: podSel(r) };
    case 2:
      return { kind: 'any' };
    case 3:
      return { kind: 'nodes', nodeSelector: nodeSel(r) };
    default:
      return cidrPeer(r);
  }
}

function networkPolicy(r: Rng, i: number, ns: string): Policy {
  const isolates = r.pick([['ingress'], ['egress'], ['ingress', 'egress']] as const);
  const rules: Rule[] = [];
  for (const direction of isolates) {
    const n = r.int(0, 2);
    for (let index = 0; index < n; index++) {
      const peers = r.chance(0.2)
        ? [{ kind: 'any' } as Peer]
        : Array.from({ length: r.int(1, 2) }, () => netpolPeer(r, ns));
      rules.push({ direction, action: 'allow', peers, ports: ports(r), index });
    }
  }
  return {
    ref: { kind: 'NetworkPolicy', namespace: ns, name: `np${i}` },
    tier: 'netpol',
    priority: 0,
    subject: { kind: 'pods', namespace: ns, podSelector: podSel(r) },
    isolates: [...isolates],
    rules,
  };
}

function clusterPolicy(r: Rng, i: number, nodes: boolean): Policy {
  const tier = nodes || r.chance(0.6) ? 'admin' : 'baseline';
  const subject: Subject = nodes
    ? { kind: 'nodes', nodeSelector: nodeSel(r) }
    : { kind: 'pods', namespaceSelector: nsSel(r), podSelector: podSel(r) };
  const counts = { ingress: 0, egress: 0 };
  const rules: Rule[] = Array.from({ length: r.int(1, 4) }, () => {
    const direction = r.pick(['ingress', 'egress'] as const);
    return {
      direction,
      // Pass in Baseline too: there it ends at the default allow.
      action: r.pick(['allow', 'deny', 'pass'] as const),
      peers: Array.from({ length: r.int(1, 2) }, () => cnpPeer(r, direction === 'egress' || nodes)),
      ports: ports(r),
      index: counts[direction]++,
      ...(r.chance(0.5) && { name: `r${counts[direction]}` }),
    };
  });
  return {
    ref: nodes ? { kind: 'NodePolicy', name: `node${i}` } : { kind: 'ClusterNetworkPolicy', name: `cnp${i}` },
    tier,
    priority: r.int(0, 3),
    subject,
    isolates: [],
    rules,
  };
}

/** Name prefix of bulkPolicies' policies. */
export const BULK = 'bulk';

/** A peer no packet of randomPackets comes from or goes to (RFC 2544 benchmark range). */
function fillerPeer(i: number): Peer {
  return { kind: 'cidr', cidr: `198.18.${(i >> 8) & 255}.${i & 255}/32`, except: [] };
}

/**
 * Hundreds of rules in one direction: a big Admin ClusterNetworkPolicy and many
 * NetworkPolicies of one namespace, mostly fillers no packet matches with random
 * rules among them, so tables run past 256 rules and rules of later chunks decide
 * (and an Admin Pass may end its tier in a later chunk).
 */
function bulkPolicies(r: Rng, s: Snapshot, first: number): Policy[] {
  const direction = r.pick(['ingress', 'egress'] as const);
  const real = (i: number) => i % 16 === r.int(0, 15);
  const admin: Rule[] = Array.from({ length: r.int(100, 400) }, (_, index) =>
    real(index)
      ? {
          direction,
          action: r.pick(['allow', 'deny', 'pass'] as const),
          peers: [cnpPeer(r, direction === 'egress')],
          ports: ports(r),
          index,
        }
      : { direction, action: 'deny', peers: [fillerPeer(index)], ports: null, index },
  );
  const ns = r.pick(s.namespaces).name;
  const podSelector = podSel(r);
  const netpols = Array.from({ length: r.int(50, 300) }, (_, i): Policy => ({
    ref: { kind: 'NetworkPolicy', namespace: ns, name: `${BULK}${first + 1 + i}` },
    tier: 'netpol',
    priority: 0,
    subject: { kind: 'pods', namespace: ns, podSelector },
    isolates: [direction],
    rules: [
      {
        direction,
        action: 'allow',
        peers: [real(i) ? netpolPeer(r, ns) : fillerPeer(1000 + i)],
        ports: ports(r),
        index: 0,
      },
    ],
  }));
  return [
    {
      ref: { kind: 'ClusterNetworkPolicy', name: `${BULK}${first}` },
      tier: 'admin',
      priority: r.int(0, 3),
      subject: { kind: 'pods', namespaceSelector: {}, podSelector },
      isolates: [],
      rules: admin,
    },
    ...netpols,
  ];
}

export function randomSnapshot(seed: number): Snapshot {
  const r = new Rng(seed);
  const s = emptySnapshot();
  s.config.privileged.enabled = false;
  const dual = r.chance(0.3);
  const secondary = r.chance(0.25);
  s.namespaces = ['ns0', 'ns1', 'ns2'].slice(0, r.int(1, 3)).map((name) => ({
    name,
    labels: { 'kubernetes.io/metadata.name': name, ...(r.chance(0.7) && { team: r.pick(['a', 'b']) }) },
  }));
  s.nodes = Array.from({ length: r.int(1, 2) }, (_, i): NodeObj => ({
    name: `n${i + 1}`,
    labels: { 'kubernetes.io/hostname': `n${i + 1}`, ...(r.chance(0.7) && { zone: r.pick(['z1', 'z2']) }) },
    addresses: [`192.168.0.${i + 1}`, ...(dual ? [`fd00:192::${i + 1}`] : [])],
  }));
  const podCount = r.int(2, 6);
  s.pods = Array.from({ length: podCount }, (_, i): PodObj => {
    const node = r.pick(s.nodes);
    const hostNetwork = r.chance(0.08);
    const subnet = r.int(1, 2);
    const labels: Record<string, string> = {};
    if (r.chance(0.8)) labels.app = r.pick(APPS);
    if (r.chance(0.5)) labels.tier = r.pick(TIERS);
    const ports: ContainerPort[] = [];
    for (const p of NAMED)
      if (r.chance(0.3) && !ports.some((q) => q.name === p.name && q.protocol === p.protocol)) ports.push(p);
    return {
      namespace: r.pick(s.namespaces).name,
      name: `p${i}`,
      labels,
      annotations: {},
      nodeName: node.name,
      hostNetwork,
      ports,
      ips: hostNetwork
        ? node.addresses
        : [`10.244.${subnet}.${i + 2}`, ...(dual ? [`fd00:244:${subnet}::${i + 2}`] : [])],
      networks: !hostNetwork && secondary && r.chance(0.7) ? [{ network: SECONDARY, ips: [`10.250.0.${i + 2}`] }] : [],
    };
  });
  const policyCount = r.int(0, 5);
  s.policies = Array.from({ length: policyCount }, (_, i) => {
    const kind = r.int(0, 9);
    if (kind < 5) {
      const p = networkPolicy(r, i, r.pick(s.namespaces).name);
      // On a snapshot with a secondary network, some become MultiNetworkPolicies for it.
      return secondary && r.chance(0.5)
        ? { ...p, ref: { ...p.ref, kind: 'MultiNetworkPolicy' as const }, networks: [SECONDARY] }
        : p;
    }
    return clusterPolicy(r, i, kind === 9);
  });
  if (r.chance(0.03)) s.policies.push(...bulkPolicies(r, s, policyCount));
  return s;
}

/** Random packets between the snapshot's addresses and a few outside ones. */
export function randomPackets(s: Snapshot, seed: number, count: number): Packet[] {
  const r = new Rng(seed ^ 0x5eed);
  const addrs = [...new Set([...s.pods.flatMap((p) => p.ips), ...s.nodes.flatMap((n) => n.addresses)])];
  const secondary = [...new Set(s.pods.flatMap((p) => p.networks.flatMap((n) => n.ips)))];
  const out: Packet[] = [];
  while (out.length < count) {
    if (secondary.length && r.chance(0.3)) {
      const pick = () => (r.chance(0.9) ? r.pick(secondary) : '10.250.9.9');
      const protocol = r.pick(['TCP', 'UDP'] as const);
      out.push({ src: pick(), dst: pick(), protocol, dstPort: r.pick(PORTS), network: SECONDARY });
      continue;
    }
    const v6 = r.chance(0.25);
    const pool = addrs.filter((a) => a.includes(':') === v6);
    const outside = EXTERNAL.filter((a) => a.includes(':') === v6);
    if (pool.length === 0) continue;
    const src = r.chance(0.85) ? r.pick(pool) : r.pick(outside);
    const dst = r.chance(0.85) ? r.pick(pool) : r.pick(outside);
    const protocol: L4Protocol = r.pick(['TCP', 'TCP', 'UDP', 'SCTP', v6 ? 'ICMPv6' : 'ICMP'] as const);
    const icmp = protocol === 'ICMP' || protocol === 'ICMPv6';
    const dstPort = icmp ? 0 : r.chance(0.8) ? r.pick(PORTS) : r.int(1, 65535);
    // conntrack state: ICMP as an error about a connection (related), the rest as a later packet of one
    const tracked = r.chance(0.2) ? (icmp ? { related: true } : { established: true }) : {};
    out.push({ src, dst, protocol, dstPort, ...tracked });
  }
  return out;
}
