// The compiler's rule form: a rule resolved against the snapshot, as the datapath
// sees it (identity sets, CIDRs with their excepts, protocol/port ranges). Every
// rule is a product peers x ports, so "first set bit of (peer & port)" is exact.
import type { Action, L4Protocol, Tier } from '../model/rules';
import { IPPROTO } from '../wire/abi';

export interface PortBlock {
  proto: number; // IPPROTO_*
  start: number;
  end: number; // inclusive; 0..65535 = every port of the protocol
}

export interface CidrPeer {
  cidr: string; // canonical text
  except: string[]; // canonical, sorted
}

export interface PeerSet {
  identities: number[]; // sorted
  cidrs: CidrPeer[]; // sorted by cidr
}

export interface CompiledRule {
  tier: Tier;
  action: Action;
  policy?: string; // policyName(); absent for the synthetic rules of the netpol tier
  ruleId: number; // index into the policy's rules (0 for synthetic rules)
  rule: string; // ruleName()
  peers: PeerSet;
  /** null = every protocol and port. */
  ports: PortBlock[] | null;
}

export const PROTO_NUMBER: Record<L4Protocol, number> = {
  TCP: IPPROTO.TCP,
  UDP: IPPROTO.UDP,
  SCTP: IPPROTO.SCTP,
  ICMP: IPPROTO.ICMP,
  ICMPv6: IPPROTO.ICMPV6,
};

export const ANY_CIDR = '::/0';

// Compiled rules are never mutated and are shared by every list that holds them, so
// their keys are computed once per rule object.
const matchKeys = new WeakMap<CompiledRule, string>();
const contentKeys = new WeakMap<CompiledRule, string>();

function cached(cache: WeakMap<CompiledRule, string>, r: CompiledRule, make: () => string): string {
  let k = cache.get(r);
  if (k === undefined) cache.set(r, (k = make()));
  return k;
}

/** What a rule matches (peers, ports, action): equal matches may be merged in a tier. */
export function matchKey(r: CompiledRule): string {
  return cached(matchKeys, r, () => JSON.stringify([r.action, r.peers, r.ports]));
}

/** Everything that makes a table entry: equal lists share one table. (The JSON of the
 *  list of rule arrays, written out from each rule's cached part.) */
export function contentKey(rules: CompiledRule[]): string {
  const parts = rules.map((r) =>
    cached(contentKeys, r, () =>
      JSON.stringify([r.tier, r.action, r.policy ?? null, r.ruleId, r.rule, r.peers, r.ports]),
    ),
  );
  return `[${parts.join(',')}]`;
}

export function isEmptyPeerSet(p: PeerSet): boolean {
  return p.identities.length === 0 && p.cidrs.length === 0;
}

export function sortPorts(ports: PortBlock[]): PortBlock[] {
  const seen = new Map(ports.map((p) => [`${p.proto}:${p.start}:${p.end}`, p]));
  return [...seen.values()].sort((a, b) => a.proto - b.proto || a.start - b.start || a.end - b.end);
}

export function sortCidrs(cidrs: CidrPeer[]): CidrPeer[] {
  const seen = new Map(cidrs.map((c) => [`${c.cidr}!${c.except.join(',')}`, c]));
  return [...seen].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, c]) => c);
}
