// An independent NetworkPolicy oracle, written from the Kubernetes API reference of
// networking.k8s.io/v1 NetworkPolicy (and the apiserver's defaulting of it), working on raw
// Kubernetes objects as parsed from YAML. It deliberately shares no code with src/ (no model,
// selectors or reference imports): its own label selectors, its own IP/CIDR arithmetic.
// test/unit/spec-oracle.test.ts compares it with the project's reference evaluator.
//
// The reading of the spec encoded here:
// - A policy selects the pods of its own namespace matched by spec.podSelector ({} = all).
// - policyTypes, when absent or empty, defaults to ["Ingress"], plus "Egress" when the policy
//   has at least one egress rule (`len(spec.egress) != 0`: `egress: []` does not count).
//   When policyTypes is given, a section whose type is not listed is ignored.
// - A pod is isolated for a direction iff some policy selecting it has that policy type; an
//   isolated pod allows exactly the union of the rules of those policies (`ingress: []` or a
//   missing section contributes no rule: deny all for that policy).
// - A rule matches iff a peer matches (from/to missing or [] = every peer) and a port matches
//   (ports missing or [] = every port and protocol).
// - A peer: ipBlock = cidr contains the address and no except entry does (v4 never matches v6);
//   podSelector only = pods of the policy's namespace; namespaceSelector only = every pod of the
//   selected namespaces; both = pods matching podSelector in the selected namespaces.
//   Namespaces carry kubernetes.io/metadata.name = their name (set by the control plane).
// - A port: protocol defaults to TCP and must equal the packet's; port missing = every port of
//   that protocol; a number = that port, or port..endPort inclusive; a name = the destination
//   pod's container port of that name and protocol.
// - A connection is allowed iff the source's egress allows it and the destination's ingress does.

/* eslint-disable @typescript-eslint/no-explicit-any */
type Raw = any;

export type Proto = 'TCP' | 'UDP' | 'SCTP';

// ---- label selectors (metav1.LabelSelector) ----

/** An empty selector matches everything; matchLabels and matchExpressions are ANDed. */
export function selectorMatches(sel: Raw, labels: Record<string, string>): boolean {
  if (sel === null || sel === undefined) return false; // a null selector matches nothing
  const has = (k: string) => Object.prototype.hasOwnProperty.call(labels, k);
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) {
    if (!has(k) || labels[k] !== String(v)) return false;
  }
  for (const req of sel.matchExpressions ?? []) {
    const values: string[] = (req.values ?? []).map(String);
    switch (req.operator) {
      case 'In':
        if (!has(req.key) || !values.includes(labels[req.key])) return false;
        break;
      case 'NotIn':
        if (has(req.key) && values.includes(labels[req.key])) return false;
        break;
      case 'Exists':
        if (!has(req.key)) return false;
        break;
      case 'DoesNotExist':
        if (has(req.key)) return false;
        break;
      default:
        throw new Error(`oracle: unknown selector operator ${req.operator}`);
    }
  }
  return true;
}

// ---- addresses ----

export interface Addr {
  family: 4 | 6;
  value: bigint;
}

function parseV4(text: string): bigint | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    v = (v << 8n) | BigInt(Number(p));
  }
  return v;
}

function parseV6(text: string): bigint | undefined {
  let s = text;
  // An embedded IPv4 tail (::ffff:1.2.3.4) is rewritten as its two hex groups.
  const lastColon = s.lastIndexOf(':');
  const tail = s.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = parseV4(tail);
    if (v4 === undefined) return undefined;
    s = `${s.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groups = (h: string) => (h === '' ? [] : h.split(':'));
  const head = groups(halves[0]);
  const rest = halves.length === 2 ? groups(halves[1]) : [];
  if (![...head, ...rest].every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) return undefined;
  let full: string[];
  if (halves.length === 2) {
    const zeros = 8 - head.length - rest.length;
    if (zeros < 1) return undefined;
    full = [...head, ...Array<string>(zeros).fill('0'), ...rest];
  } else {
    full = head;
  }
  if (full.length !== 8) return undefined;
  return full.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

export function parseAddr(text: string): Addr {
  if (text.includes(':')) {
    const v = parseV6(text);
    if (v === undefined) throw new Error(`oracle: bad IPv6 address ${text}`);
    return { family: 6, value: v };
  }
  const v = parseV4(text);
  if (v === undefined) throw new Error(`oracle: bad IPv4 address ${text}`);
  return { family: 4, value: v };
}

/** "a.b.c.d/n" or "x::y/n"; host bits set below the prefix are ignored, as Go's ParseCIDR does. */
export function cidrContains(cidr: string, addr: Addr): boolean {
  const slash = cidr.indexOf('/');
  if (slash < 0) throw new Error(`oracle: bad CIDR ${cidr}`);
  const net = parseAddr(cidr.slice(0, slash));
  const len = Number(cidr.slice(slash + 1));
  const bits = net.family === 4 ? 32 : 128;
  if (!Number.isInteger(len) || len < 0 || len > bits) throw new Error(`oracle: bad CIDR ${cidr}`);
  if (net.family !== addr.family) return false;
  const shift = BigInt(bits - len);
  return net.value >> shift === addr.value >> shift;
}

// ---- the cluster ----

export interface OraclePod {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  /** One address per family at most: status.podIPs, else status.podIP. */
  ips: Addr[];
  ipTexts: string[];
  ports: { name?: string; port: number; protocol: Proto }[];
}

export interface OracleCluster {
  nsLabels: Map<string, Record<string, string>>;
  pods: OraclePod[];
  policies: Raw[];
}

function stringLabels(l: Raw): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(l ?? {})) out[k] = String(v);
  return out;
}

/** From raw objects (any kinds; Namespaces, Pods and NetworkPolicies are read). */
export function oracleCluster(objects: Raw[]): OracleCluster {
  const nsLabels = new Map<string, Record<string, string>>();
  const pods: OraclePod[] = [];
  const policies: Raw[] = [];
  for (const o of objects) {
    if (o.kind === 'Namespace') {
      nsLabels.set(o.metadata.name, {
        ...stringLabels(o.metadata.labels),
        'kubernetes.io/metadata.name': o.metadata.name,
      });
    } else if (o.kind === 'Pod') {
      const texts: string[] = o.status?.podIPs?.length
        ? o.status.podIPs.map((p: Raw) => p.ip)
        : o.status?.podIP
          ? [o.status.podIP]
          : [];
      pods.push({
        namespace: o.metadata.namespace ?? 'default',
        name: o.metadata.name,
        labels: stringLabels(o.metadata.labels),
        ips: texts.map(parseAddr),
        ipTexts: texts,
        ports: (o.spec?.containers ?? []).flatMap((c: Raw) =>
          (c.ports ?? []).map((p: Raw) => ({ name: p.name, port: p.containerPort, protocol: p.protocol ?? 'TCP' })),
        ),
      });
    } else if (o.kind === 'NetworkPolicy' && o.apiVersion === 'networking.k8s.io/v1') {
      policies.push(o);
    }
  }
  return { nsLabels, pods, policies };
}

// ---- evaluation ----

function policyTypes(spec: Raw): string[] {
  if (Array.isArray(spec.policyTypes) && spec.policyTypes.length > 0) return spec.policyTypes;
  return Array.isArray(spec.egress) && spec.egress.length > 0 ? ['Ingress', 'Egress'] : ['Ingress'];
}

function policyNamespace(p: Raw): string {
  return p.metadata.namespace ?? 'default';
}

function selects(p: Raw, pod: OraclePod): boolean {
  return policyNamespace(p) === pod.namespace && selectorMatches(p.spec?.podSelector ?? {}, pod.labels);
}

function peerMatches(c: OracleCluster, policyNs: string, peer: Raw, other: OraclePod, otherAddr: Addr): boolean {
  if (peer.ipBlock) {
    return (
      cidrContains(peer.ipBlock.cidr, otherAddr) &&
      !(peer.ipBlock.except ?? []).some((e: string) => cidrContains(e, otherAddr))
    );
  }
  const nsOk = peer.namespaceSelector
    ? selectorMatches(peer.namespaceSelector, c.nsLabels.get(other.namespace) ?? {})
    : other.namespace === policyNs;
  const podOk = peer.podSelector ? selectorMatches(peer.podSelector, other.labels) : true;
  if (!peer.namespaceSelector && !peer.podSelector) throw new Error('oracle: a peer with no selector');
  return nsOk && podOk;
}

function portMatches(port: Raw, protocol: Proto, dstPort: number, dst: OraclePod): boolean {
  if ((port.protocol ?? 'TCP') !== protocol) return false;
  if (port.port === undefined || port.port === null) return true;
  if (typeof port.port === 'string') {
    return dst.ports.some((cp) => cp.name === port.port && cp.protocol === protocol && cp.port === dstPort);
  }
  const end = port.endPort ?? port.port;
  return dstPort >= port.port && dstPort <= end;
}

function ruleMatches(
  c: OracleCluster,
  policyNs: string,
  rule: Raw,
  peers: Raw[] | undefined,
  other: OraclePod,
  otherAddr: Addr,
  protocol: Proto,
  dstPort: number,
  dst: OraclePod,
): boolean {
  const peerOk = !peers || peers.length === 0 || peers.some((p) => peerMatches(c, policyNs, p, other, otherAddr));
  const ports: Raw[] | undefined = rule.ports;
  const portOk = !ports || ports.length === 0 || ports.some((p) => portMatches(p, protocol, dstPort, dst));
  return peerOk && portOk;
}

export interface OracleVerdict {
  allow: boolean;
  egress: boolean;
  ingress: boolean;
}

/** A new connection from src (at srcAddr) to dst (at dstAddr), protocol and destination port. */
export function oracleVerdict(
  c: OracleCluster,
  src: OraclePod,
  srcAddr: Addr,
  dst: OraclePod,
  dstAddr: Addr,
  protocol: Proto,
  dstPort: number,
): OracleVerdict {
  const egressPolicies = c.policies.filter((p) => selects(p, src) && policyTypes(p.spec ?? {}).includes('Egress'));
  const egress =
    egressPolicies.length === 0 ||
    egressPolicies.some((p) =>
      (p.spec.egress ?? []).some((r: Raw) =>
        ruleMatches(c, policyNamespace(p), r, r.to, dst, dstAddr, protocol, dstPort, dst),
      ),
    );
  const ingressPolicies = c.policies.filter((p) => selects(p, dst) && policyTypes(p.spec ?? {}).includes('Ingress'));
  const ingress =
    ingressPolicies.length === 0 ||
    ingressPolicies.some((p) =>
      (p.spec.ingress ?? []).some((r: Raw) =>
        ruleMatches(c, policyNamespace(p), r, r.from, src, srcAddr, protocol, dstPort, dst),
      ),
    );
  return { allow: egress && ingress, egress, ingress };
}
