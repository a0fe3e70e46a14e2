// Per endpoint and direction: the ordered rule list the datapath walks. Tiers in
// order (system, admin, netpol, baseline), policies in comparePolicies order, rules in
// policy order; an isolated direction's netpol tier ends with the node-local allow
// (ingress to pods) and the isolation deny. Rules that can match nothing are dropped,
// adjacent equal rules of a tier merged.
// Endpoints are described by their identity (what subjects and named ports see), so
// every endpoint of one label set shares one build, and a policy rule's expansion is
// memoized by content (see Compiler for how long such memos stay valid).
import { createHash } from 'node:crypto';
import type { Direction, Policy, PortSpec, Rule } from '../model/rules';
import { TIER_ORDER, comparePolicies, policyName, ruleName } from '../model/rules';
import type { Draft, Identities } from './identities';
import { namedPortKey } from './identities';
import type { Memo } from './memo';
import { resolvePeers, splitByNamedPort, splitReadsAddresses } from './peers';
import {
  type CompiledRule,
  type PeerSet,
  type PortBlock,
  PROTO_NUMBER,
  contentKey,
  isEmptyPeerSet,
  matchKey,
  sortPorts,
} from './ruleset';
import { type Selection, subjectSelects } from './selection';
import { isolationRule, nodeLocalRule } from './synthetic';

export interface EndpointContext {
  kind: 'pod' | 'host' | 'secondary';
  /** The pod on its primary network, or the node: subjects select it, and ingress
   *  named ports resolve on its named ports. */
  self: Draft;
  network?: string; // secondary network "ns/nad"
  nodeAddresses: string[]; // own node's addresses (node-local rule for pods)
}

/** Everything a context's rule lists depend on besides the policies and identities. */
export function contextKey(ctx: EndpointContext): string {
  return `${JSON.stringify([ctx.kind, ctx.network ?? '', ctx.nodeAddresses])}${ctx.self.key}`;
}

export interface RuleList {
  rules: CompiledRule[];
  /** contentKey(rules): equal lists share one table. */
  content: string;
  /** Built from pod addresses (CIDR peers with egress named ports), not only identities. */
  readsAddresses: boolean;
}

/** A policy with its content key (JSON). The key is made when first read: a compile
 *  reads those of the policies its endpoints apply, not all of a cluster's. */
export class KeyedPolicy {
  constructor(
    readonly policy: Policy,
    private readonly keyOf: (policy: Policy) => string,
  ) {}

  get key(): string {
    return this.keyOf(this.policy);
  }
}

/** A short stand-in for a policy's content key inside the per-rule memo keys: the key
 *  of a policy with thousands of rules runs to megabytes, and one copy per rule would
 *  make such a policy cost time and memory quadratic in its rules. */
const digests = new WeakMap<KeyedPolicy, string>();
function digest(kp: KeyedPolicy): string {
  let d = digests.get(kp);
  if (d === undefined) digests.set(kp, (d = createHash('sha256').update(kp.key).digest('base64')));
  return d;
}

export interface Expansion {
  rules: CompiledRule[];
  readsAddresses: boolean;
}

/** Policies by the namespace their subject pins (most NetworkPolicies), so an
 *  endpoint only checks its namespace's policies and those that pin none. */
export class PolicyIndex {
  private readonly byNamespace: Map<string, number[]>;
  private readonly rest: number[];

  /** `from`: an index whose policies pin the same namespaces, position by position. */
  constructor(
    readonly policies: readonly KeyedPolicy[],
    from?: PolicyIndex,
  ) {
    this.byNamespace = from?.byNamespace ?? new Map();
    this.rest = from?.rest ?? [];
    if (from) return;
    policies.forEach((kp, i) => {
      const ns = pinned(kp.policy);
      if (ns === undefined) this.rest.push(i);
      else {
        const list = this.byNamespace.get(ns);
        if (list) list.push(i);
        else this.byNamespace.set(ns, [i]);
      }
    });
  }

  /** This index with policy `i` replaced, if the new one pins the same namespace. */
  replaced(i: number, kp: KeyedPolicy): PolicyIndex | undefined {
    if (pinned(kp.policy) !== pinned(this.policies[i].policy)) return undefined;
    const policies = this.policies.slice();
    policies[i] = kp;
    return new PolicyIndex(policies, this);
  }

  /** The policies that apply to an endpoint, in comparePolicies order (ties in snapshot order). */
  applied(ctx: EndpointContext): KeyedPolicy[] {
    const own = ctx.self.endpoint.kind === 'pod' ? (this.byNamespace.get(ctx.self.endpoint.pod.namespace) ?? []) : [];
    const out: KeyedPolicy[] = [];
    // Merge the two index lists back into snapshot order, so the stable sort ties alike.
    for (let a = 0, b = 0; a < own.length || b < this.rest.length;) {
      const i = b >= this.rest.length || (a < own.length && own[a] < this.rest[b]) ? own[a++] : this.rest[b++];
      if (appliesTo(ctx, this.policies[i].policy)) out.push(this.policies[i]);
    }
    return out.sort((x, y) => comparePolicies(x.policy, y.policy));
  }
}

/** The namespace a policy's subject pins, if any. */
function pinned(p: Policy): string | undefined {
  return p.subject.kind === 'pods' ? p.subject.namespace : undefined;
}

function appliesTo(ctx: EndpointContext, p: Policy): boolean {
  // Policies without networks govern the primary network; MultiNetworkPolicies only
  // the secondary networks they name.
  const onNetwork = ctx.kind === 'secondary' ? (p.networks?.includes(ctx.network ?? '') ?? false) : !p.networks;
  return onNetwork && subjectSelects(p.subject, ctx.self);
}

function portBlock(spec: PortSpec, port?: number): PortBlock {
  const proto = PROTO_NUMBER[spec.protocol];
  if (port !== undefined) return { proto, start: port, end: port };
  if (spec.port === undefined) return { proto, start: 0, end: 65535 };
  return { proto, start: spec.port, end: spec.endPort ?? spec.port };
}

/** Rule lists for one compile. `expansions` may outlive it: it must only hold
 *  expansions of the same identities (the Compiler clears it when they change). */
export class RuleListBuilder {
  /** Expansions that read pod addresses: valid for this compile only. */
  private readonly local = new Map<string, Expansion>();

  constructor(
    private readonly ids: Identities,
    private readonly sel: Selection,
    private readonly expansions: Memo<Expansion>,
  ) {}

  /** `applied`: PolicyIndex.applied(ctx). */
  build(ctx: EndpointContext, applied: KeyedPolicy[]): Record<Direction, RuleList> {
    return { ingress: this.list(ctx, applied, 'ingress'), egress: this.list(ctx, applied, 'egress') };
  }

  private list(ctx: EndpointContext, policies: KeyedPolicy[], dir: Direction): RuleList {
    const rules: CompiledRule[] = [];
    let readsAddresses = false;
    for (const tier of TIER_ORDER) {
      const inTier = policies.filter((kp) => kp.policy.tier === tier);
      for (const kp of inTier) {
        // Upstream: rules of a direction a NetworkPolicy does not isolate have no effect.
        if (tier === 'netpol' && !kp.policy.isolates.includes(dir)) continue;
        kp.policy.rules.forEach((rule, ruleId) => {
          if (rule.direction !== dir) return;
          const e = this.expansion(kp, ruleId, ctx);
          rules.push(...e.rules);
          readsAddresses ||= e.readsAddresses;
        });
      }
      if (tier === 'netpol' && inTier.some((kp) => kp.policy.isolates.includes(dir))) {
        const local =
          dir === 'ingress' && ctx.self.endpoint.kind === 'pod' ? nodeLocalRule(ctx.nodeAddresses) : undefined;
        if (local) rules.push(local);
        rules.push(isolationRule);
      }
    }
    const merged = this.mergeAdjacent(rules);
    return { rules: merged, content: contentKey(merged), readsAddresses };
  }

  private expansion(kp: KeyedPolicy, ruleId: number, ctx: EndpointContext): Expansion {
    const rule = kp.policy.rules[ruleId];
    // Only ingress named ports read the endpoint's own ports.
    const ownPorts = rule.direction === 'ingress' && rule.ports?.some((p) => p.name !== undefined);
    const key = `${digest(kp)}\0${ruleId}\0${ctx.network ?? ''}\0${ownPorts ? JSON.stringify([...ctx.self.namedPorts].sort()) : ''}`;
    let e = this.local.get(key) ?? this.expansions.find(key);
    if (!e) {
      const base = {
        tier: kp.policy.tier,
        action: rule.action,
        policy: policyName(kp.policy.ref),
        ruleId,
        rule: ruleName(rule),
      };
      e = this.expandRule(ctx, rule, base);
      if (e.readsAddresses) this.local.set(key, e);
      else this.expansions.set(key, e);
    }
    return e;
  }

  /** One policy rule -> product sub-rules (none when it can match nothing). */
  private expandRule(ctx: EndpointContext, rule: Rule, base: Omit<CompiledRule, 'peers' | 'ports'>): Expansion {
    const peers = resolvePeers(rule.peers, this.sel, ctx.network);
    if (isEmptyPeerSet(peers)) return { rules: [], readsAddresses: false };
    if (rule.ports === null) return { rules: [{ ...base, peers, ports: null }], readsAddresses: false };

    let readsAddresses = false;
    const numeric: PortBlock[] = [];
    const byPeers = new Map<string, { peers: PeerSet; ports: PortBlock[] }>();
    for (const spec of rule.ports) {
      if (spec.name === undefined) {
        numeric.push(portBlock(spec));
        continue;
      }
      if (rule.direction === 'ingress') {
        // Ingress named ports resolve on the endpoint's own pod.
        const own =
          ctx.self.endpoint.kind === 'pod'
            ? ctx.self.namedPorts.get(namedPortKey(spec.protocol, spec.name))
            : undefined;
        if (own !== undefined) numeric.push(portBlock(spec, own));
        continue;
      }
      // Egress named ports resolve on each destination: one sub-rule per distinct peer set.
      const key = namedPortKey(spec.protocol, spec.name);
      readsAddresses ||= splitReadsAddresses(peers);
      for (const [port, sub] of splitByNamedPort(peers, key, this.ids, this.sel, ctx.network)) {
        const k = JSON.stringify(sub);
        const entry = byPeers.get(k) ?? { peers: sub, ports: [] };
        entry.ports.push(portBlock(spec, port));
        byPeers.set(k, entry);
      }
    }
    const rules: CompiledRule[] = [];
    if (numeric.length) rules.push({ ...base, peers, ports: sortPorts(numeric) });
    for (const k of [...byPeers.keys()].sort()) {
      const e = byPeers.get(k)!;
      rules.push({ ...base, peers: e.peers, ports: sortPorts(e.ports) });
    }
    return { rules, readsAddresses };
  }

  private mergeAdjacent(rules: CompiledRule[]): CompiledRule[] {
    const out: CompiledRule[] = [];
    for (const r of rules) {
      const prev = out[out.length - 1];
      if (prev && prev.tier === r.tier && matchKey(prev) === matchKey(r)) continue;
      out.push(r);
    }
    return out;
  }
}
