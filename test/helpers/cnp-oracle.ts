// An independent oracle for ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2) plus
// NetworkPolicy (networking.k8s.io/v1), written from the upstream API text and sharing no
// code with src/model, src/selectors or src/reference: it reads the raw objects as parsed
// from YAML and answers "is this pod-to-pod connection allowed?".
//
// What it implements, with the upstream text it follows:
// - Tiers (ClusterNetworkPolicySpec.Tier): Admin, then the NetworkPolicy tier, then
//   Baseline, then the default "all pods can communicate". Egress of the source and
//   ingress of the destination are decided independently; both must allow ("Accept ...
//   any ingress rules at the destination do apply").
// - Within a tier, lower `priority` first; within a policy, rules in written order; the
//   first matching rule decides. Accept and Deny are final; Pass "skips all further
//   ClusterNetworkPolicy rules in the current tier ... and passes evaluation to the next
//   tier" (Admin -> NetworkPolicy, Baseline -> default allow). The generator never gives
//   two policies of one tier the same priority (the API leaves that undefined).
// - Subject: exactly one of `namespaces` (a namespace selector) or `pods`
//   (namespaceSelector, default empty = every namespace, AND podSelector). Host-networked
//   pods are never subjects, nor matched by the `namespaces`/`pods` peers.
// - Peers: ingress `namespaces`/`pods`; egress also `nodes` (the IPs in the selected
//   nodes' status.addresses) and `networks` (CIDRs, matched against any address, pods'
//   included).
// - Protocols: absent = every protocol and port (ICMP too); otherwise any entry matches: tcp/udp/sctp
//   with no destinationPort (every port), destinationPort.number, or destinationPort.range
//   (start..end inclusive); destinationNamedPort = a containerPort of the destination pod
//   with that name, whose protocol (default TCP) is the packet's.
// - NetworkPolicy tier: a pod selected, in that direction, by a NetworkPolicy of its
//   namespace (policyTypes absent/empty = Ingress, plus Egress when spec.egress has rules)
//   is isolated: allowed iff some rule of some such policy matches (from/to absent or
//   empty = every peer; podSelector alone = the policy's namespace; namespaceSelector
//   alone = every pod of those namespaces; both = AND; ipBlock cidr minus except; ports
//   absent/empty = all; protocol default TCP; port absent = every port; endPort
//   inclusive; a named port resolved on the destination pod for the rule's protocol). A
//   pod isolated in a direction never reaches the Baseline tier for it.
// - netfence's documented choices (src/reference/evaluate.ts header): ingress to a pod
//   isolated by a NetworkPolicy is still allowed from its own node's addresses (so from
//   a hostNetwork pod on the same node); an endpoint talking to itself (two hostNetwork
//   pods of one node share its address) is never subject to policy; a hostNetwork pod is
//   its node, which no ClusterNetworkPolicy subject or NetworkPolicy selects.

export type Labels = Record<string, string>;
export interface RawSelector {
  matchLabels?: Labels;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}
interface RawMeta {
  name: string;
  namespace?: string;
  labels?: Labels;
}
export interface RawPort {
  name?: string;
  containerPort: number;
  protocol?: string;
}
export interface RawPod {
  kind: 'Pod';
  metadata: RawMeta;
  spec: { nodeName?: string; hostNetwork?: boolean; containers: { name: string; ports?: RawPort[] }[] };
  status: { podIPs?: { ip: string }[]; podIP?: string };
}
export interface RawNode {
  kind: 'Node';
  metadata: RawMeta;
  status: { addresses: { type: string; address: string }[] };
}
export interface RawNamespace {
  kind: 'Namespace';
  metadata: RawMeta;
}
export interface CnpPort {
  number?: number;
  range?: { start: number; end: number };
}
export type CnpProtocol =
  | { tcp: { destinationPort?: CnpPort } }
  | { udp: { destinationPort?: CnpPort } }
  | { sctp: { destinationPort?: CnpPort } }
  | { destinationNamedPort: string };
export interface CnpPeer {
  namespaces?: RawSelector;
  pods?: { namespaceSelector?: RawSelector; podSelector: RawSelector };
  nodes?: RawSelector;
  networks?: string[];
}
export interface CnpRule {
  name?: string;
  action: 'Accept' | 'Deny' | 'Pass';
  from?: CnpPeer[];
  to?: CnpPeer[];
  protocols?: CnpProtocol[];
}
export interface RawCnp {
  kind: 'ClusterNetworkPolicy';
  metadata: RawMeta;
  spec: {
    tier: 'Admin' | 'Baseline';
    priority: number;
    subject: CnpPeer;
    ingress?: CnpRule[];
    egress?: CnpRule[];
  };
}
export interface NpPeer {
  podSelector?: RawSelector;
  namespaceSelector?: RawSelector;
  ipBlock?: { cidr: string; except?: string[] };
}
export interface NpPort {
  protocol?: string;
  port?: number | string;
  endPort?: number;
}
export interface NpRule {
  from?: NpPeer[];
  to?: NpPeer[];
  ports?: NpPort[];
}
export interface RawNp {
  kind: 'NetworkPolicy';
  metadata: RawMeta;
  spec: { podSelector?: RawSelector; policyTypes?: string[]; ingress?: NpRule[]; egress?: NpRule[] };
}
export type RawObject = RawPod | RawNode | RawNamespace | RawCnp | RawNp;

// ---- label selectors (metav1.LabelSelector) ----

export function selects(sel: RawSelector | undefined, labels: Labels | undefined): boolean {
  const l = labels ?? {};
  const has = (k: string) => Object.prototype.hasOwnProperty.call(l, k);
  for (const [k, v] of Object.entries(sel?.matchLabels ?? {})) if (!has(k) || l[k] !== v) return false;
  for (const e of sel?.matchExpressions ?? []) {
    const vals = e.values ?? [];
    const ok =
      e.operator === 'In'
        ? has(e.key) && vals.includes(l[e.key])
        : e.operator === 'NotIn'
          ? !has(e.key) || !vals.includes(l[e.key])
          : e.operator === 'Exists'
            ? has(e.key)
            : e.operator === 'DoesNotExist'
              ? !has(e.key)
              : fail(`selector operator ${e.operator}`);
    if (!ok) return false;
  }
  return true;
}

function fail(what: string): never {
  throw new Error(`oracle: unsupported ${what}`);
}

// ---- addresses ----

/** An address as [family, 128-bit value]; v4 in the low 32 bits. */
function addr(text: string): [4 | 6, bigint] {
  if (!text.includes(':')) {
    const parts = text.split('.').map(Number);
    if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) fail(`IPv4 "${text}"`);
    return [4, parts.reduce((a, p) => (a << 8n) | BigInt(p), 0n)];
  }
  const [head, tail] = text.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = text.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  if (groups.length !== 8) fail(`IPv6 "${text}"`);
  return [6, groups.reduce((a, g) => (a << 16n) | BigInt(parseInt(g, 16)), 0n)];
}

export function inCidr(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/');
  const [fa, a] = addr(ip);
  const [fb, b] = addr(base);
  if (fa !== fb) return false;
  const width = fa === 4 ? 32 : 128;
  const shift = BigInt(width - Number(bits));
  return a >> shift === b >> shift;
}

export function family(ip: string): 4 | 6 {
  return ip.includes(':') ? 6 : 4;
}

// ---- the cluster ----

export interface Packet {
  /** ICMP/ICMPv6 (port 0) match only rules that name no protocol or port. */
  protocol: 'TCP' | 'UDP' | 'SCTP' | 'ICMP' | 'ICMPv6';
  port: number;
  /** The address family the pods talk over (the oracle ignores it: it is given addresses). */
  family?: 4 | 6;
}

type Direction = 'ingress' | 'egress';

export class Oracle {
  private pods: RawPod[] = [];
  private nodes: RawNode[] = [];
  private nsLabels = new Map<string, Labels>();
  private cnps: RawCnp[] = [];
  private nps: RawNp[] = [];

  constructor(objects: RawObject[]) {
    for (const o of objects) {
      if (o.kind === 'Pod') this.pods.push(o);
      else if (o.kind === 'Node') this.nodes.push(o);
      // The API server always labels a namespace with its name.
      else if (o.kind === 'Namespace')
        this.nsLabels.set(o.metadata.name, {
          ...o.metadata.labels,
          'kubernetes.io/metadata.name': o.metadata.name,
        });
      else if (o.kind === 'ClusterNetworkPolicy') this.cnps.push(o);
      else if (o.kind === 'NetworkPolicy') this.nps.push(o);
    }
    const byPriority = (a: RawCnp, b: RawCnp) => a.spec.priority - b.spec.priority;
    this.cnps.sort(byPriority);
  }

  /** "ns/name" of every pod, with its address of a family (undefined when it has none). */
  podsWith(fam: 4 | 6): { name: string; pod: RawPod; ip: string }[] {
    return this.pods.flatMap((pod) => {
      const ips = pod.status.podIPs?.map((x) => x.ip) ?? (pod.status.podIP ? [pod.status.podIP] : []);
      const ip = ips.find((a) => family(a) === fam);
      return ip === undefined ? [] : [{ name: `${pod.metadata.namespace ?? 'default'}/${pod.metadata.name}`, pod, ip }];
    });
  }

  private ns(pod: RawPod): string {
    return pod.metadata.namespace ?? 'default';
  }

  private node(pod: RawPod): RawNode | undefined {
    return this.nodes.find((n) => n.metadata.name === pod.spec.nodeName);
  }

  private nodeAddresses(n: RawNode | undefined): string[] {
    return n?.status.addresses.map((a) => a.address) ?? [];
  }

  /** namespaceSelector AND podSelector over a non-hostNetwork pod. */
  private podIn(pod: RawPod, nsSel: RawSelector | undefined, podSel: RawSelector | undefined): boolean {
    if (pod.spec.hostNetwork) return false;
    return selects(nsSel, this.nsLabels.get(this.ns(pod))) && selects(podSel, pod.metadata.labels);
  }

  private cnpSubject(cnp: RawCnp, pod: RawPod): boolean {
    const s = cnp.spec.subject;
    if (Object.keys(s).length !== 1) fail('subject');
    if (s.namespaces) return this.podIn(pod, s.namespaces, {});
    if (s.pods) return this.podIn(pod, s.pods.namespaceSelector, s.pods.podSelector);
    return fail('subject');
  }

  private cnpPeer(p: CnpPeer, other: RawPod, otherIp: string): boolean {
    if (Object.keys(p).length !== 1) fail('peer');
    if (p.namespaces) return this.podIn(other, p.namespaces, {});
    if (p.pods) return this.podIn(other, p.pods.namespaceSelector, p.pods.podSelector);
    if (p.nodes) {
      const sel = p.nodes;
      return this.nodes.some((n) => selects(sel, n.metadata.labels) && this.nodeAddresses(n).includes(otherIp));
    }
    if (p.networks) return p.networks.some((c) => inCidr(otherIp, c));
    return fail('peer');
  }

  /** The destination pod's container port of that name and protocol. */
  private named(dst: RawPod, name: string, protocol: string): number | undefined {
    if (dst.spec.hostNetwork) return undefined;
    for (const c of dst.spec.containers)
      for (const p of c.ports ?? []) if (p.name === name && (p.protocol ?? 'TCP') === protocol) return p.containerPort;
    return undefined;
  }

  private cnpProtocol(pr: CnpProtocol, pkt: Packet, dst: RawPod): boolean {
    if ('destinationNamedPort' in pr) return this.named(dst, pr.destinationNamedPort, pkt.protocol) === pkt.port;
    const [key, body] = Object.entries(pr)[0] as [string, { destinationPort?: CnpPort }];
    if (key.toUpperCase() !== pkt.protocol) return false;
    const dp = body.destinationPort;
    if (dp === undefined) return true;
    if (dp.number !== undefined) return dp.number === pkt.port;
    if (dp.range !== undefined) return dp.range.start <= pkt.port && pkt.port <= dp.range.end;
    return fail('destinationPort');
  }

  /** The deciding action of one tier, or undefined (no match, or Pass). */
  private tier(
    tier: 'Admin' | 'Baseline',
    dir: Direction,
    self: RawPod,
    other: RawPod,
    otherIp: string,
    pkt: Packet,
  ): 'allow' | 'deny' | 'pass' | undefined {
    const dst = dir === 'ingress' ? self : other;
    for (const cnp of this.cnps) {
      if (cnp.spec.tier !== tier || !this.cnpSubject(cnp, self)) continue;
      for (const r of cnp.spec[dir] ?? []) {
        const peers = (dir === 'ingress' ? r.from : r.to) ?? [];
        if (!peers.some((p) => this.cnpPeer(p, other, otherIp))) continue;
        if (r.protocols !== undefined && !r.protocols.some((pr) => this.cnpProtocol(pr, pkt, dst))) continue;
        return r.action === 'Accept' ? 'allow' : r.action === 'Deny' ? 'deny' : 'pass';
      }
    }
    return undefined;
  }

  private npTypes(np: RawNp): Direction[] {
    const t = np.spec.policyTypes ?? [];
    if (t.length) return t.map((x) => x.toLowerCase() as Direction);
    return (np.spec.egress ?? []).length ? ['ingress', 'egress'] : ['ingress'];
  }

  private npPeer(np: RawNp, p: NpPeer, other: RawPod, otherIp: string): boolean {
    if (p.ipBlock) {
      return inCidr(otherIp, p.ipBlock.cidr) && !(p.ipBlock.except ?? []).some((e) => inCidr(otherIp, e));
    }
    if (other.spec.hostNetwork) return false;
    if (p.namespaceSelector === undefined) {
      if (p.podSelector === undefined) fail('NetworkPolicy peer');
      return this.ns(other) === (np.metadata.namespace ?? 'default') && selects(p.podSelector, other.metadata.labels);
    }
    return this.podIn(other, p.namespaceSelector, p.podSelector);
  }

  private npPort(p: NpPort, pkt: Packet, dst: RawPod): boolean {
    const protocol = p.protocol ?? 'TCP';
    if (protocol !== pkt.protocol) return false;
    if (p.port === undefined) return true;
    if (typeof p.port === 'string') return this.named(dst, p.port, protocol) === pkt.port;
    return p.port <= pkt.port && pkt.port <= (p.endPort ?? p.port);
  }

  /** allow/deny of the NetworkPolicy tier, or undefined when no policy isolates `self`. */
  private netpol(dir: Direction, self: RawPod, other: RawPod, otherIp: string, pkt: Packet): boolean | undefined {
    if (self.spec.hostNetwork) return undefined;
    const dst = dir === 'ingress' ? self : other;
    const isolating = this.nps.filter(
      (np) =>
        (np.metadata.namespace ?? 'default') === this.ns(self) &&
        selects(np.spec.podSelector ?? {}, self.metadata.labels) &&
        this.npTypes(np).includes(dir),
    );
    if (!isolating.length) return undefined;
    const allowed = isolating.some((np) =>
      (np.spec[dir] ?? []).some((r) => {
        const peers = (dir === 'ingress' ? r.from : r.to) ?? [];
        const ports = r.ports ?? [];
        return (
          (peers.length === 0 || peers.some((p) => this.npPeer(np, p, other, otherIp))) &&
          (ports.length === 0 || ports.some((p) => this.npPort(p, pkt, dst)))
        );
      }),
    );
    if (allowed) return true;
    // netfence: ingress to an isolated pod from its own node's addresses is allowed.
    return dir === 'ingress' && this.nodeAddresses(this.node(self)).includes(otherIp);
  }

  private side(dir: Direction, self: RawPod, other: RawPod, otherIp: string, pkt: Packet): boolean {
    if (self.spec.hostNetwork) return true; // a node: no subject or NetworkPolicy selects it
    const admin = this.tier('Admin', dir, self, other, otherIp, pkt);
    if (admin === 'allow' || admin === 'deny') return admin === 'allow';
    const np = this.netpol(dir, self, other, otherIp, pkt);
    if (np !== undefined) return np;
    const base = this.tier('Baseline', dir, self, other, otherIp, pkt);
    return base !== 'deny';
  }

  /** Is a new connection from src (at srcIp) to dst (at dstIp) allowed? */
  allowed(src: RawPod, srcIp: string, dst: RawPod, dstIp: string, pkt: Packet): boolean {
    if (srcIp === dstIp) return true; // one endpoint talking to itself (two hostNetwork pods of a node)
    return this.side('egress', src, dst, dstIp, pkt) && this.side('ingress', dst, src, srcIp, pkt);
  }
}
