// Where an endpoint direction goes when its own table cannot be enforced (over a
// capacity limit, or its entries do not fit the maps) and it has no last enforced table
// to keep: deny everything, after the privileged system-tier rules, so an isolated host
// interface never locks the node out of its API server, kubelet or agent. Pods have no
// system rules: every isolated pod direction shares one one-rule table.
import type { RuleList } from './rulelist';
import { contentKey } from './ruleset';
import { isolationRule } from './synthetic';

export function isolationList(list: RuleList): RuleList {
  const rules = [...list.rules.filter((r) => r.tier === 'system'), isolationRule];
  return { rules, content: contentKey(rules), readsAddresses: false };
}
