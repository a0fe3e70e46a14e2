// The executable specification: the verdict for one packet, computed straight from the
// normalized policies with no tables, caches or bitmaps. Slow and obviously right; the
// BPF datapath is tested against it.
//
// Semantics (each point is covered by test/unit/reference*.test.ts):
// - The source's egress and the destination's ingress are evaluated independently; an
//   address that is no known endpoint has no policy on its side (allow).
// - Tiers in order: system (privileged node rules), admin (ClusterNetworkPolicy Admin and
//   Antrea node policies, by priority then rule order), netpol, baseline, default allow.
//   Pass skips the rest of its tier. In the netpol tier an endpoint selected by a policy
//   isolating the direction gets the union of their allow rules, then (ingress to a pod)
//   its own node's addresses (NODE_LOCAL_RULE), then ISOLATION_RULE denies the rest.
// - An endpoint talking to itself (a pod to its own IP, a node to its own address) is
//   never subject to policy: that traffic never leaves the pod's or node's network
//   namespace, so no hook sees it; the upstream e2e tests ignore loopback for the same
//   reason. Both sides report the default allow.
// - ipBlock except shrinks its own peer only; endPort is inclusive; a named port is
//   looked up on the destination pod for the rule's protocol; protocols never match
//   across (an SCTP rule does not open TCP).
// - MultiNetworkPolicy applies only when packet.network is one of its networks; every
//   other kind only on the primary network (packet.network undefined).
// - An established packet (of a connection allowed earlier) passes conntrack on a pod side,
//   and on a node side while config.privileged.enabled and .established (ESTABLISHED_RULE);
//   otherwise it is evaluated like a new connection. A related packet (an ICMP/ICMPv6
//   error about such a connection) passes the same way (RELATED_RULE); where it does not,
//   it is an ICMP packet like any other.
// - A destination that is a Service ClusterIP with a matching port is DNATed to its first
//   backend pod (by namespace/name) like kube-proxy, and both sides are evaluated against
//   that backend (`dnat` in the verdict).
import { canonicalIp, ipInCidr } from '../model/ip';
import type { L4Protocol, Peer, Policy, PortSpec, Rule, Tier } from '../model/rules';
import {
  comparePolicies,
  ESTABLISHED_RULE,
  ISOLATION_RULE,
  NODE_LOCAL_RULE,
  RELATED_RULE,
  policyName,
  ruleName,
} from '../model/rules';
import type { Snapshot } from '../model/types';
import { matchesSelector } from '../selectors/labels';
import {
  endpointByIp,
  endpointName,
  namedPort,
  nodeOfPod,
  peerSelects,
  sameEndpoint,
  subjectSelects,
  type Endpoint,
} from '../selectors/resolve';

export const L4_PROTOCOLS: readonly L4Protocol[] = ['TCP', 'UDP', 'SCTP', 'ICMP', 'ICMPv6'];

export interface Packet {
  src: string;
  dst: string;
  protocol: L4Protocol;
  /** Ignored for ICMP/ICMPv6. */
  dstPort: number;
  /** Secondary network "ns/nad"; undefined = the primary (pod) network. */
  network?: string;
  /** Part of a connection allowed earlier (a reply or a later packet): conntrack state. */
  established?: boolean;
  /** An ICMP/ICMPv6 error (protocol ICMP or ICMPv6) about a connection allowed earlier. */
  related?: boolean;
}

export interface DirectionVerdict {
  verdict: 'allow' | 'deny';
  tier: Tier | 'default';
  /** policyName(ref) of the deciding policy. */
  policy?: string;
  /** ruleName(rule) of the deciding rule, or a synthetic rule name (rules.ts). */
  rule?: string;
}

export interface Verdict {
  verdict: 'allow' | 'deny';
  egress: DirectionVerdict;
  ingress: DirectionVerdict;
  /** Set when the destination was a Service ClusterIP rewritten to a backend. */
  dnat?: { service: string; pod: string; ip: string; port: number };
}

export const DEFAULT_ALLOW: DirectionVerdict = Object.freeze({ verdict: 'allow', tier: 'default' });

type Side = {
  ep: Endpoint;
  direction: Rule['direction'];
  /** The other end: its endpoint (if known) and address. */
  peer?: Endpoint;
  peerIp: string;
};

function peerMatches(s: Snapshot, peer: Peer, side: Side): boolean {
  if (peer.kind === 'cidr') {
    return ipInCidr(side.peerIp, peer.cidr) && !peer.except.some((e) => ipInCidr(side.peerIp, e));
  }
  return peer.kind === 'any' || (side.peer !== undefined && peerSelects(s, peer, side.peer));
}

function portMatches(spec: PortSpec, pkt: Packet, dst: Endpoint | undefined): boolean {
  if (spec.protocol !== pkt.protocol) return false;
  if (spec.name !== undefined) {
    return dst?.kind === 'pod' && namedPort(dst.pod, spec.name, spec.protocol) === pkt.dstPort;
  }
  return spec.port === undefined || (pkt.dstPort >= spec.port && pkt.dstPort <= (spec.endPort ?? spec.port));
}

function appliesOnNetwork(p: Policy, network: string | undefined): boolean {
  return p.networks === undefined ? network === undefined : network !== undefined && p.networks.includes(network);
}

function evaluateSide(s: Snapshot, side: Side, pkt: Packet, dst: Endpoint | undefined): DirectionVerdict {
  const p = s.config.privileged;
  if ((pkt.established || pkt.related) && (side.ep.kind === 'pod' || (p.enabled && p.established))) {
    return { verdict: 'allow', tier: 'system', rule: pkt.related ? RELATED_RULE : ESTABLISHED_RULE };
  }
  const policies = s.policies
    .filter((p) => appliesOnNetwork(p, pkt.network) && subjectSelects(s, p.subject, side.ep))
    .sort(comparePolicies);
  const matching = (p: Policy) =>
    p.rules.filter(
      (r) =>
        r.direction === side.direction &&
        r.peers.some((peer) => peerMatches(s, peer, side)) &&
        (r.ports === null || r.ports.some((spec) => portMatches(spec, pkt, dst))),
    );
  const decide = (p: Policy, r: Rule): DirectionVerdict => ({
    verdict: r.action === 'allow' ? 'allow' : 'deny',
    tier: p.tier,
    policy: policyName(p.ref),
    rule: ruleName(r),
  });

  // First matching rule of a tier decides; Pass ends the tier without a decision.
  const tierDecision = (tier: Tier): DirectionVerdict | undefined => {
    for (const p of policies.filter((q) => q.tier === tier)) {
      const r = matching(p)[0];
      if (r) return r.action === 'pass' ? undefined : decide(p, r);
    }
    return undefined;
  };

  const early = tierDecision('system') ?? tierDecision('admin');
  if (early) return early;

  const isolating = policies.filter((p) => p.tier === 'netpol' && p.isolates.includes(side.direction));
  if (isolating.length) {
    for (const p of isolating) {
      const r = matching(p).find((x) => x.action === 'allow');
      if (r) return decide(p, r);
    }
    if (side.direction === 'ingress' && side.ep.kind === 'pod') {
      const node = nodeOfPod(s, side.ep.pod);
      const peerIp = canonicalIp(side.peerIp);
      if (node && peerIp && node.addresses.includes(peerIp))
        return { verdict: 'allow', tier: 'netpol', rule: NODE_LOCAL_RULE };
    }
    return { verdict: 'deny', tier: 'netpol', rule: ISOLATION_RULE };
  }

  return tierDecision('baseline') ?? DEFAULT_ALLOW;
}

function checkPacket(pkt: Packet): void {
  for (const [what, ip] of [
    ['source', pkt.src],
    ['destination', pkt.dst],
  ] as const) {
    if (canonicalIp(ip) === undefined) throw new Error(`evaluate packet: invalid ${what} address "${ip}"`);
  }
  if (!L4_PROTOCOLS.includes(pkt.protocol)) throw new Error(`evaluate packet: unknown protocol "${pkt.protocol}"`);
  if (pkt.related && pkt.protocol !== 'ICMP' && pkt.protocol !== 'ICMPv6') {
    throw new Error(`evaluate packet: related needs protocol ICMP or ICMPv6, not ${pkt.protocol}`);
  }
  if (!Number.isInteger(pkt.dstPort) || pkt.dstPort < 0 || pkt.dstPort > 65535) {
    throw new Error(`evaluate packet: port ${pkt.dstPort} out of range 0-65535`);
  }
}

/** kube-proxy's DNAT of a ClusterIP to the first backend pod serving the port. */
function serviceDnat(s: Snapshot, pkt: Packet): Verdict['dnat'] {
  if (pkt.network !== undefined || pkt.protocol === 'ICMP' || pkt.protocol === 'ICMPv6') return undefined;
  const dst = canonicalIp(pkt.dst)!;
  const svc = s.services.find((x) => x.clusterIPs.includes(dst));
  const sp = svc?.ports.find((p) => p.port === pkt.dstPort && p.protocol === pkt.protocol);
  if (!svc || !sp || !svc.selector) return undefined;
  const family = dst.includes(':');
  const selector = { matchLabels: svc.selector };
  const backends = s.pods
    .filter((p) => p.namespace === svc.namespace && matchesSelector(selector, p.labels))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const pod of backends) {
    const ip = pod.ips.find((a) => a.includes(':') === family);
    const port = typeof sp.targetPort === 'number' ? sp.targetPort : namedPort(pod, sp.targetPort, sp.protocol);
    if (ip && port) return { service: `${svc.namespace}/${svc.name}`, pod: `${pod.namespace}/${pod.name}`, ip, port };
  }
  return undefined;
}

export function evaluate(s: Snapshot, packet: Packet): Verdict {
  checkPacket(packet);
  const dnat = serviceDnat(s, packet);
  const pkt = dnat ? { ...packet, dst: dnat.ip, dstPort: dnat.port } : packet;
  const src = endpointByIp(s, pkt.src, pkt.network);
  const dst = endpointByIp(s, pkt.dst, pkt.network);
  const self = src !== undefined && dst !== undefined && sameEndpoint(src, dst);
  const egress =
    src && !self
      ? evaluateSide(s, { ep: src, direction: 'egress', peer: dst, peerIp: pkt.dst }, pkt, dst)
      : DEFAULT_ALLOW;
  const ingress =
    dst && !self
      ? evaluateSide(s, { ep: dst, direction: 'ingress', peer: src, peerIp: pkt.src }, pkt, dst)
      : DEFAULT_ALLOW;
  return {
    verdict: egress.verdict === 'allow' && ingress.verdict === 'allow' ? 'allow' : 'deny',
    egress,
    ingress,
    ...(dnat && { dnat }),
  };
}

/** "ns/pod", "node/NAME" or the address itself, for output. */
export function describeAddress(s: Snapshot, ip: string, network?: string): string {
  const ep = endpointByIp(s, ip, network);
  return ep ? endpointName(ep) : (canonicalIp(ip) ?? ip);
}
