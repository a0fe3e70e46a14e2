// Normalized policy rules: every policy kind (NetworkPolicy, ClusterNetworkPolicy,
// MultiNetworkPolicy, Antrea-schema node policies, privileged system rules) becomes a
// Policy with ordered Rules. reference/ evaluates these, compile/ turns them into tables.
import type { LabelSelector, PolicyRef, Protocol } from './types';

/** Evaluation order: system, admin, netpol, baseline, then default allow. */
export type Tier = 'system' | 'admin' | 'netpol' | 'baseline';
export const TIER_ORDER: readonly Tier[] = ['system', 'admin', 'netpol', 'baseline'];

export type Action = 'allow' | 'deny' | 'pass';
export type Direction = 'ingress' | 'egress';
export type L4Protocol = Protocol | 'ICMP' | 'ICMPv6';

/** Which endpoints a policy applies to. */
export type Subject =
  | {
      kind: 'pods';
      /** Exact namespace (NetworkPolicy, MultiNetworkPolicy). */
      namespace?: string;
      /** Namespace selector (ClusterNetworkPolicy); absent with `namespace` set. */
      namespaceSelector?: LabelSelector;
      podSelector: LabelSelector;
    }
  | { kind: 'nodes'; nodeSelector: LabelSelector };

/** The other side of a connection. Peers of a rule are OR-ed. */
export type Peer =
  /** Every address (NetworkPolicy rule with an empty from/to). */
  | { kind: 'any' }
  /** Pods: namespace AND pod selector; `namespace` pins a single namespace
   *  (NetworkPolicy podSelector-only peers mean the policy's own namespace). */
  | { kind: 'pods'; namespace?: string; namespaceSelector?: LabelSelector; podSelector?: LabelSelector }
  /** Nodes by label; hostNetwork pods count as their node. */
  | { kind: 'nodes'; nodeSelector: LabelSelector }
  /** ipBlock / networks: cidr minus except (the except shrinks this peer only). */
  | { kind: 'cidr'; cidr: string; except: string[] };

/** Destination port match. No port and no name = every port of the protocol. */
export interface PortSpec {
  protocol: L4Protocol;
  port?: number;
  endPort?: number; // inclusive
  name?: string; // named container port, resolved on the destination pod
}

export interface Rule {
  direction: Direction;
  action: Action;
  /** OR of peers. An empty list matches nothing (NetworkPolicy `from: []` is
   *  normalized to [{kind:'any'}] by the model, never to []). */
  peers: Peer[];
  /** null = every protocol and port. */
  ports: PortSpec[] | null;
  /** Index of the rule in its policy's list for that direction (trace: "ingress[2]"). */
  index: number;
  /** Optional rule name (ClusterNetworkPolicy rules have names). */
  name?: string;
}

export interface Policy {
  ref: PolicyRef;
  tier: Tier;
  /** Lower numbers first within a tier; ties keep source order by ref. */
  priority: number;
  subject: Subject;
  /** MultiNetworkPolicy: the networks ("ns/nad") it applies to. Absent = primary network only. */
  networks?: string[];
  /** NetworkPolicy policyTypes: directions in which selected endpoints become isolated. */
  isolates: Direction[];
  rules: Rule[];
}

export function policyName(ref: PolicyRef): string {
  return ref.namespace ? `${ref.kind} ${ref.namespace}/${ref.name}` : `${ref.kind} ${ref.name}`;
}

export function ruleName(rule: Pick<Rule, 'direction' | 'index' | 'name'>): string {
  return rule.name ? `${rule.direction}[${rule.index}] ${rule.name}` : `${rule.direction}[${rule.index}]`;
}

/** Precedence of policies: tier order, then priority (lower first), then policy name,
 *  so equal priorities resolve the same way in reference/ and compile/. */
export function comparePolicies(a: Policy, b: Policy): number {
  const ta = TIER_ORDER.indexOf(a.tier);
  const tb = TIER_ORDER.indexOf(b.tier);
  if (ta !== tb) return ta - tb;
  if (a.priority !== b.priority) return a.priority - b.priority;
  const na = policyName(a.ref);
  const nb = policyName(b.ref);
  return na < nb ? -1 : na > nb ? 1 : 0;
}

/** Synthetic rules of the netpol tier (they have no policy: `policy` stays undefined in
 *  verdicts). For an endpoint isolated in a direction the tier ends with, in order:
 *  the allow rules of every selecting policy, then (ingress to a pod only) NODE_LOCAL_RULE
 *  allowing its own node's addresses, then ISOLATION_RULE denying the rest. */
export const NODE_LOCAL_RULE = 'node-local';
export const ISOLATION_RULE = 'isolation';
/** Synthetic system-tier rule: a packet of a connection allowed earlier passes through
 *  conntrack without a policy lookup (pods always; nodes while privileged.established). */
export const ESTABLISHED_RULE = 'established';
/** Synthetic system-tier rule: an ICMP error about a connection allowed earlier passes
 *  as related (PMTU discovery) where its established packets would. */
export const RELATED_RULE = 'related';
