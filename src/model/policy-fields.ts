// Readers shared by the policy parsers (NetworkPolicy and MultiNetworkPolicy,
// ClusterNetworkPolicy, Antrea node policies): the rule lists of both directions, peer and
// port lists and the NetworkPolicyPort shape.
import type { Field } from './field';
import { PROTOCOLS } from './objects';
import type { Direction, Peer, PortSpec, Rule } from './rules';

/** What a parser reads from one rule; direction and index come from where the rule stands. */
export type RuleBody = Pick<Rule, 'action' | 'peers' | 'ports' | 'name'>;

/** Reads one rule; peersKey is 'from' for ingress rules and 'to' for egress rules.
 *  Undefined drops the rule (one that fails closed by matching nothing). */
export type RuleParser = (r: Field, peersKey: 'from' | 'to') => RuleBody | undefined;

function parseDirection(spec: Field, direction: Direction, parse: RuleParser): Rule[] {
  const peersKey = direction === 'ingress' ? 'from' : 'to';
  return spec
    .get(direction)
    .items()
    .flatMap((r, index): Rule[] => {
      const body = parse(r, peersKey);
      if (!body) return [];
      const { action, peers, ports, name } = body;
      return [{ direction, action, peers, ports, index, ...(name !== undefined && { name }) }];
    });
}

/** spec.ingress then spec.egress; the order within a direction is the rules' precedence. */
export function parseRules(spec: Field, parse: RuleParser): Rule[] {
  return [...parseDirection(spec, 'ingress', parse), ...parseDirection(spec, 'egress', parse)];
}

/** A from/to list where absent or empty matches every peer. */
export function peersOrAny(f: Field, parse: (p: Field) => Peer): Peer[] {
  const items = f.items();
  return items.length ? items.map(parse) : [{ kind: 'any' }];
}

/** A ports list where absent or empty (null) matches every protocol and port. */
export function portsOrAll(f: Field, parse: (p: Field) => PortSpec): PortSpec[] | null {
  const items = f.items();
  return items.length ? items.map(parse) : null;
}

/** NetworkPolicyPort: protocol defaults to TCP, endPort is inclusive; `named` reads a port
 *  given by name (kept as a name, or refused where names cannot be resolved). */
export function parsePortFields(
  f: Field,
  named: (pf: Field, ef: Field, protocol: PortSpec['protocol']) => PortSpec,
): PortSpec {
  f.object(['protocol', 'port', 'endPort']);
  const protocol = f.get('protocol').oneOf(PROTOCOLS, 'TCP');
  const pf = f.get('port');
  const ef = f.get('endPort');
  if (!pf.present) {
    if (ef.present) ef.fail('requires a numeric port');
    return { protocol };
  }
  if (typeof pf.value === 'string') return named(pf, ef, protocol);
  const port = pf.int(1, 65535);
  if (!ef.present) return { protocol, port };
  const endPort = ef.int(1, 65535);
  if (endPort < port) ef.fail(`must be >= port (${port}), got ${endPort}`);
  return { protocol, port, endPort };
}
