// The rules the compiler adds itself, named as the reference names them (rules.ts):
// they close the netpol tier of an isolated direction and belong to no policy.
import { ISOLATION_RULE, NODE_LOCAL_RULE } from '../model/rules';
import { ANY_CIDR, type CompiledRule } from './ruleset';
import { canonicalCidr } from './prefix';

/** policy_id of rules that belong to no policy. */
export const NO_POLICY_ID = 0xffffffff;

/** Ingress to an isolated pod from its own node (kubelet probes). */
export function nodeLocalRule(nodeAddresses: string[]): CompiledRule | undefined {
  if (nodeAddresses.length === 0) return undefined;
  const cidrs = [...new Set(nodeAddresses.map(canonicalCidr))].sort().map((cidr) => ({ cidr, except: [] }));
  return {
    tier: 'netpol',
    action: 'allow',
    ruleId: 0,
    rule: NODE_LOCAL_RULE,
    peers: { identities: [], cidrs },
    ports: null,
  };
}

export const isolationRule: CompiledRule = {
  tier: 'netpol',
  action: 'deny',
  ruleId: 0,
  rule: ISOLATION_RULE,
  peers: { identities: [], cidrs: [{ cidr: ANY_CIDR, except: [] }] },
  ports: null,
};
