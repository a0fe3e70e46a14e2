// policy.networking.k8s.io/v1alpha2 ClusterNetworkPolicy -> Policy of tier admin or
// baseline. Rule order within a direction is kept: it is the precedence inside a policy.
// A peer or protocol netfence does not support (the experimental domainNames, a type of a
// newer API version) never drops the object: that rule fails closed and is reported.
import { type Field, FieldError } from './field';
import type { Meta } from './objects';
import { PROTOCOLS } from './objects';
import { parseRules, type RuleBody, type RuleParser } from './policy-fields';
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

/** A part of a rule netfence cannot read: it fails closed (see ruleParser). */
interface Unsupported {
  field: Field;
  message: string;
}

/** Peer types by direction: ingress peers are pods only. */
const PEER_TYPES = { from: ['namespaces', 'pods'], to: ['namespaces', 'pods', 'nodes', 'networks'] } as const;
const PROTOCOL_TYPES = ['tcp', 'udp', 'sctp', 'destinationNamedPort'] as const;

/** The one key an object sets (the API's MinProperties=MaxProperties=1); undefined, noted in
 *  `unsupported`, when it sets none (a field of a newer API version, pruned) or one netfence
 *  does not support (the experimental domainNames, a newer API's). */
function soleKey(f: Field, supported: readonly string[], what: string, unsupported: Unsupported[]): string | undefined {
  const keys = Object.keys(f.object()).filter((k) => f.get(k).present);
  if (keys.length > 1) f.fail(`must set exactly one of ${supported.join(', ')}`);
  if (keys.length === 0) unsupported.push({ field: f, message: `sets no ${what} type` });
  else if (!supported.includes(keys[0]))
    unsupported.push({ field: f.get(keys[0]), message: `${what} type "${keys[0]}" is not supported` });
  else return keys[0];
  return undefined;
}

function parsePeers(f: Field, peersKey: 'from' | 'to', unsupported: Unsupported[]): Peer[] {
  const key = soleKey(f, PEER_TYPES[peersKey], 'peer', unsupported);
  if (key === undefined) return [];
  const v = f.get(key);
  switch (key) {
    case 'namespaces':
      return [{ kind: 'pods', namespaceSelector: v.selector() }];
    case 'pods':
      return [{ kind: 'pods', ...namespacedPod(v) }];
    case 'nodes':
      return [{ kind: 'nodes', nodeSelector: v.selector() }];
    default:
      return v.nonEmptyItems().map((c): Peer => ({ kind: 'cidr', cidr: c.cidrText(), except: [] }));
  }
}

function parseProtocol(f: Field, unsupported: Unsupported[]): PortSpec[] {
  const key = soleKey(f, PROTOCOL_TYPES, 'protocol', unsupported);
  if (key === undefined) return [];
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

// Pass is valid in both tiers: in Baseline it ends at the default allow.
const ACTIONS: Record<string, Action> = { Accept: 'allow', Deny: 'deny', Pass: 'pass' };

/** A rule with a part netfence cannot read fails closed, as the API specifies for peers:
 *  an Accept rule matches nothing (dropped); a Deny or Pass rule denies, with every peer in
 *  place of an unsupported peer and every port in place of an unsupported protocol. */
function failClosed(
  body: RuleBody,
  apiAction: string,
  peers: Unsupported[],
  protocols: Unsupported[],
  report: (err: FieldError) => void,
): RuleBody | undefined {
  const closed: RuleBody | undefined =
    body.action === 'allow'
      ? undefined
      : {
          ...body,
          action: 'deny',
          peers: peers.length ? [{ kind: 'any' }] : body.peers,
          ports: protocols.length ? null : body.ports,
        };
  const effect = closed
    ? `denies ${peers.length ? 'every peer' : 'its peers'} on ${closed.ports ? 'its ports' : 'every port'}`
    : 'matches nothing';
  for (const u of [...peers, ...protocols]) {
    report(new FieldError(u.field.segments, `${u.message}: the ${apiAction} rule fails closed and ${effect}`));
  }
  return closed;
}

function ruleParser(report: (err: FieldError) => void): RuleParser {
  return (r, peersKey) => {
    r.object(['name', 'action', peersKey, 'protocols']);
    const name = r.get('name').optString();
    const apiAction = r.get('action').oneOf(Object.keys(ACTIONS));
    const badPeers: Unsupported[] = [];
    const badProtocols: Unsupported[] = [];
    const peers = r
      .get(peersKey)
      .nonEmptyItems()
      .flatMap((p) => parsePeers(p, peersKey, badPeers));
    const protos = r.get('protocols');
    const ports = protos.present ? protos.nonEmptyItems().flatMap((p) => parseProtocol(p, badProtocols)) : null;
    if (ports?.some((p) => p.name) && peers.some((p) => p.kind === 'nodes' || p.kind === 'cidr')) {
      protos.fail('destinationNamedPort cannot be used with nodes or networks peers');
    }
    const body: RuleBody = { action: ACTIONS[apiAction], peers, ports, name };
    return badPeers.length || badProtocols.length ? failClosed(body, apiAction, badPeers, badProtocols, report) : body;
  };
}

/** `report`: errors of parts that fail closed (the policy still loads). */
export function parseClusterNetworkPolicy(doc: Field, meta: Meta, report: (err: FieldError) => void): Policy {
  const spec = doc.get('spec');
  spec.object(['tier', 'priority', 'subject', 'ingress', 'egress']);
  const tier = spec.get('tier').oneOf(['Admin', 'Baseline'] as const);
  return {
    ref: { kind: 'ClusterNetworkPolicy', name: meta.name },
    tier: tier === 'Baseline' ? 'baseline' : 'admin',
    priority: spec.get('priority').int(0, 1000),
    subject: parseSubject(spec.get('subject')),
    isolates: [],
    rules: parseRules(spec, ruleParser(report)),
  };
}
