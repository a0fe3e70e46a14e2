// policy.networking.k8s.io/v1alpha2 ClusterNetworkPolicy -> Policy of tier admin or
// baseline. Rule order within a direction is kept: it is the precedence inside a policy.
import { Field } from './field';
import type { Meta } from './objects';
import { PROTOCOLS } from './objects';
import { parseRules, tieredAction, type RuleParser } from './policy-fields';
import type { Action, Peer, Policy, PortSpec, Subject } from './rules';
import type { LabelSelector } from './types';

/** Exactly one key of an object must be set (the API's MinProperties=MaxProperties=1). */
function oneKey(f: Field, allowed: readonly string[]): string {
  const keys = Object.keys(f.object(allowed)).filter((k) => f.get(k).present);
  if (keys.length !== 1) f.fail(`must set exactly one of ${allowed.join(', ')}`);
  return keys[0];
}

function namespacedPod(f: Field): { namespaceSelector: LabelSelector; podSelector: LabelSelector } {
  f.object(['namespaceSelector', 'podSelector']);
  const ns = f.get('namespaceSelector');
  const pod = f.get('podSelector');
  return { namespaceSelector: ns.present ? ns.selector() : {}, podSelector: pod.selector() };
}

function parseSubject(f: Field): Subject {
  const key = oneKey(f, ['namespaces', 'pods']);
  if (key === 'namespaces') return { kind: 'pods', namespaceSelector: f.get(key).selector(), podSelector: {} };
  return { kind: 'pods', ...namespacedPod(f.get(key)) };
}

function parsePeers(f: Field, peersKey: 'from' | 'to'): Peer[] {
  const allowed = peersKey === 'from' ? ['namespaces', 'pods'] : ['namespaces', 'pods', 'nodes', 'networks', 'domainNames'];
  const key = oneKey(f, allowed);
  const v = f.get(key);
  switch (key) {
    case 'namespaces':
      return [{ kind: 'pods', namespaceSelector: v.selector() }];
    case 'pods':
      return [{ kind: 'pods', ...namespacedPod(v) }];
    case 'nodes':
      return [{ kind: 'nodes', nodeSelector: v.selector() }];
    case 'networks':
      return v.nonEmptyItems().map((c): Peer => ({ kind: 'cidr', cidr: c.cidrText(), except: [] }));
    default:
      return v.fail('domainNames peers are not supported');
  }
}

function parseProtocol(f: Field): PortSpec[] {
  const key = oneKey(f, ['tcp', 'udp', 'sctp', 'destinationNamedPort']);
  if (key === 'destinationNamedPort') {
    // The container port named so decides the protocol: one spec per protocol, of which
    // at most one can match because port names are unique within a pod.
    const name = f.get(key).string();
    return PROTOCOLS.map((protocol) => ({ protocol, name }));
  }
  const protocol = key.toUpperCase() as PortSpec['protocol'];
  const body = f.get(key);
  body.object(['destinationPort']);
  const dp = body.get('destinationPort');
  if (!dp.present) return [{ protocol }];
  if (oneKey(dp, ['number', 'range']) === 'number') return [{ protocol, port: dp.get('number').int(1, 65535) }];
  const range = dp.get('range');
  range.object(['start', 'end']);
  const start = range.get('start').int(1, 65535);
  const end = range.get('end').int(1, 65535);
  if (end <= start) range.get('end').fail(`must be greater than start (${start}), got ${end}`);
  return [{ protocol, port: start, endPort: end }];
}

const ACTIONS: Record<string, Action> = { Accept: 'allow', Deny: 'deny', Pass: 'pass' };

function ruleParser(baseline: boolean): RuleParser {
  return (r, peersKey) => {
    r.object(['name', 'action', peersKey, 'protocols']);
    const name = r.get('name').optString();
    const action = tieredAction(r.get('action'), ACTIONS, baseline);
    const peers = r.get(peersKey).nonEmptyItems().flatMap((p) => parsePeers(p, peersKey));
    const protos = r.get('protocols');
    const ports = protos.present ? protos.nonEmptyItems().flatMap(parseProtocol) : null;
    if (ports?.some((p) => p.name) && peers.some((p) => p.kind === 'nodes' || p.kind === 'cidr')) {
      protos.fail('destinationNamedPort cannot be used with nodes or networks peers');
    }
    return { action, peers, ports, name };
  };
}

export function parseClusterNetworkPolicy(doc: Field, meta: Meta): Policy {
  const spec = doc.get('spec');
  spec.object(['tier', 'priority', 'subject', 'ingress', 'egress']);
  const tier = spec.get('tier').oneOf(['Admin', 'Baseline'] as const);
  const baseline = tier === 'Baseline';
  return {
    ref: { kind: 'ClusterNetworkPolicy', name: meta.name },
    tier: baseline ? 'baseline' : 'admin',
    priority: spec.get('priority').int(0, 1000),
    subject: parseSubject(spec.get('subject')),
    isolates: [],
    rules: parseRules(spec, ruleParser(baseline)),
  };
}
