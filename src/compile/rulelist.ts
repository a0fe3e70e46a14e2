// Per endpoint and direction: the ordered rule list the datapath walks. Tiers in
// order (system, admin, netpol, baseline), policies in comparePolicies order, rules in
// policy order; an isolated direction's netpol tier ends with the node-local allow
// (ingress to pods) and the isolation deny. Rules that can match nothing are dropped,
// adjacent equal rules of a tier merged.
import type { Direction, Policy, PortSpec, Rule } from '../model/rules';
import { TIER_ORDER, comparePolicies, policyName, ruleName } from '../model/rules';
import type { Snapshot } from '../model/types';
import { type Endpoint, namedPort, subjectSelects } from '../selectors/resolve';
import type { Identities } from './identities';
import { namedPortKey } from './identities';
import { resolvePeers, splitByNamedPort } from './peers';
import { type CompiledRule, type PeerSet, type PortBlock, PROTO_NUMBER, isEmptyPeerSet, matchKey, sortPorts } from './ruleset';
import { isolationRule, nodeLocalRule } from './synthetic';

export interface EndpointContext {
  kind: 'pod' | 'host' | 'secondary';
  /** The pod (own pod: ingress named ports resolve on it) or the node. */
  endpoint: Endpoint;
  network?: string; // secondary network "ns/nad"
  nodeAddresses: string[]; // own node's addresses (node-local rule for pods)
}

interface Build {
  s: Snapshot;
  ids: Identities;
  ep: EndpointContext;
}

function appliesTo(b: Build, p: Policy): boolean {
  // Policies without networks govern the primary network; MultiNetworkPolicies only
  // the secondary networks they name.
  const onNetwork = b.ep.kind === 'secondary' ? (p.networks?.includes(b.ep.network ?? '') ?? false) : !p.networks;
  return onNetwork && subjectSelects(b.s, p.subject, b.ep.endpoint);
}

function portBlock(spec: PortSpec, port?: number): PortBlock {
  const proto = PROTO_NUMBER[spec.protocol];
  if (port !== undefined) return { proto, start: port, end: port };
  if (spec.port === undefined) return { proto, start: 0, end: 65535 };
  return { proto, start: spec.port, end: spec.endPort ?? spec.port };
}

/** One policy rule -> product sub-rules (none when it can match nothing). */
function expandRule(b: Build, rule: Rule, base: Omit<CompiledRule, 'peers' | 'ports'>): CompiledRule[] {
  const peers = resolvePeers(b.s, rule.peers, b.ids, b.ep.network);
  if (isEmptyPeerSet(peers)) return [];
  if (rule.ports === null) return [{ ...base, peers, ports: null }];

  const numeric: PortBlock[] = [];
  const byPeers = new Map<string, { peers: PeerSet; ports: PortBlock[] }>();
  for (const spec of rule.ports) {
    if (spec.name === undefined) {
      numeric.push(portBlock(spec));
      continue;
    }
    if (rule.direction === 'ingress') {
      // Ingress named ports resolve on the endpoint's own pod.
      const own = b.ep.endpoint.kind === 'pod' ? namedPort(b.ep.endpoint.pod, spec.name, spec.protocol) : undefined;
      if (own !== undefined) numeric.push(portBlock(spec, own));
      continue;
    }
    // Egress named ports resolve on each destination: one sub-rule per distinct peer set.
    const key = namedPortKey(spec.protocol, spec.name);
    for (const [port, sub] of splitByNamedPort(peers, key, b.ids, b.ep.network)) {
      const k = JSON.stringify(sub);
      const entry = byPeers.get(k) ?? { peers: sub, ports: [] };
      entry.ports.push(portBlock(spec, port));
      byPeers.set(k, entry);
    }
  }
  const out: CompiledRule[] = [];
  if (numeric.length) out.push({ ...base, peers, ports: sortPorts(numeric) });
  for (const k of [...byPeers.keys()].sort()) {
    const e = byPeers.get(k)!;
    out.push({ ...base, peers: e.peers, ports: sortPorts(e.ports) });
  }
  return out;
}

function mergeAdjacent(rules: CompiledRule[]): CompiledRule[] {
  const out: CompiledRule[] = [];
  for (const r of rules) {
    const prev = out[out.length - 1];
    if (prev && prev.tier === r.tier && matchKey(prev) === matchKey(r)) continue;
    out.push(r);
  }
  return out;
}

export function buildRuleList(s: Snapshot, ids: Identities, ep: EndpointContext, dir: Direction): CompiledRule[] {
  const b: Build = { s, ids, ep };
  const policies = s.policies.filter((p) => appliesTo(b, p)).sort(comparePolicies);
  const rules: CompiledRule[] = [];
  for (const tier of TIER_ORDER) {
    const inTier = policies.filter((p) => p.tier === tier);
    for (const p of inTier) {
      // Upstream: rules of a direction a NetworkPolicy does not isolate have no effect.
      if (tier === 'netpol' && !p.isolates.includes(dir)) continue;
      const policy = policyName(p.ref);
      p.rules.forEach((rule, ruleId) => {
        if (rule.direction !== dir) return;
        rules.push(...expandRule(b, rule, { tier, action: rule.action, policy, ruleId, rule: ruleName(rule) }));
      });
    }
    if (tier === 'netpol' && inTier.some((p) => p.isolates.includes(dir))) {
      const local = dir === 'ingress' && ep.endpoint.kind === 'pod' ? nodeLocalRule(ep.nodeAddresses) : undefined;
      if (local) rules.push(local);
      rules.push(isolationRule);
    }
  }
  return mergeAdjacent(rules);
}
