// Node policies in the Antrea schema (crd.antrea.io/v1beta1 ClusterNetworkPolicy whose
// policy-level appliedTo is a nodeSelector) -> Policy on nodes. Antrea tiers keep their
// relative order by folding the tier's priority into the policy priority.
import { Field } from './field';
import type { Meta } from './objects';
import { parsePortFields, parseRules, peersOrAny, portsOrAll, type RuleParser } from './policy-fields';
import type { Action, Peer, Policy, PortSpec } from './rules';

/** Antrea's static tiers and their priorities (lower first). */
export const ANTREA_TIERS: Readonly<Record<string, number>> = {
  emergency: 50,
  securityops: 100,
  networkops: 150,
  platform: 200,
  application: 250,
  baseline: 253,
};

/** Policy priority 1..10000 (a float) inside its tier: one number orders both, and
 *  stays below 2^32 (tier rank * 1e8 + priority * 1000). */
export function antreaPriority(tier: string, priority: number): number {
  const rank = Object.keys(ANTREA_TIERS)
    .sort((a, b) => ANTREA_TIERS[a] - ANTREA_TIERS[b])
    .indexOf(tier);
  return rank * 1e8 + priority * 1000;
}

// Reject denies like Drop; netfence sends no reject reply (the caller warns).
const ACTIONS: Record<string, Action> = { Allow: 'allow', Drop: 'deny', Reject: 'deny', Pass: 'pass' };

/** The rule's action; Antrea refuses Pass in its baseline tier (nothing follows it there). */
function ruleAction(f: Field, baseline: boolean, warn: (msg: string) => void): Action {
  const name = f.oneOf(Object.keys(ACTIONS).filter((k) => !baseline || k !== 'Pass'));
  if (name === 'Reject') warn(`${f.path}: Reject is enforced as Drop (no reject reply)`);
  return ACTIONS[name];
}

/** True when the policy-level appliedTo selects nodes; anything else is not a node policy. */
export function isAntreaNodePolicy(doc: Field): boolean {
  return doc
    .get('spec')
    .get('appliedTo')
    .items()
    .some((a) => a.get('nodeSelector').present);
}

function parsePeer(f: Field): Peer {
  const keys = Object.keys(f.object(['ipBlock', 'nodeSelector']));
  if (keys.length !== 1) f.fail('must set exactly one of ipBlock, nodeSelector');
  if (keys[0] === 'nodeSelector') return { kind: 'nodes', nodeSelector: f.get('nodeSelector').selector() };
  const ipb = f.get('ipBlock');
  ipb.object(['cidr']);
  return { kind: 'cidr', cidr: ipb.get('cidr').cidrText(), except: [] };
}

function parsePort(f: Field): PortSpec {
  return parsePortFields(f, (pf) => pf.fail('named ports are not supported on nodes'));
}

function ruleParser(baseline: boolean, warn: (msg: string) => void): RuleParser {
  return (r, peersKey) => {
    r.object(['name', 'action', peersKey, 'ports', 'enableLogging', 'logLabel']);
    r.get('enableLogging').bool(false);
    r.get('logLabel').optString();
    return {
      name: r.get('name').optString(),
      action: ruleAction(r.get('action'), baseline, warn),
      // Antrea: an absent or empty from/to matches every peer.
      peers: peersOrAny(r.get(peersKey), parsePeer),
      ports: portsOrAll(r.get('ports'), parsePort),
    };
  };
}

/** Call only when isAntreaNodePolicy(doc). */
export function parseAntreaNodePolicy(doc: Field, meta: Meta, warn: (msg: string) => void): Policy {
  const spec = doc.get('spec');
  spec.object(['tier', 'priority', 'appliedTo', 'ingress', 'egress']);
  const tf = spec.get('tier');
  const tier = tf.present ? tf.string().toLowerCase() : 'application';
  if (!(tier in ANTREA_TIERS)) tf.fail(`must be one of ${Object.keys(ANTREA_TIERS).join(', ')}, got "${tier}"`);
  const applied = spec.get('appliedTo').items();
  if (applied.length !== 1) spec.get('appliedTo').fail('node policies take exactly one appliedTo entry');
  applied[0].object(['nodeSelector']);
  const baseline = tier === 'baseline';
  return {
    ref: { kind: 'NodePolicy', name: meta.name },
    tier: baseline ? 'baseline' : 'admin',
    priority: antreaPriority(tier, spec.get('priority').number(1, 10000)),
    subject: { kind: 'nodes', nodeSelector: applied[0].get('nodeSelector').selector() },
    isolates: [],
    rules: parseRules(spec, ruleParser(baseline, warn)),
  };
}
