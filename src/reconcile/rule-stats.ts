// Counters of retired tables leave nf_rule_stats. A table's id is the hash of its content,
// so a retired table's counters would never be touched again, yet they would stay and
// fill the map, and a full map silently stops counting the rules of new tables.
import { NF_RULE_DEFAULT } from '../wire/abi';
import { decodeRuleKey, encodeRuleKey } from '../wire/tables';
import type { NativeAddon } from '../datapath/native-api';

/** The nf_rule_stats keys of retired tables: one per deleted rule, plus each table's
 *  default-verdict counter (index NF_RULE_DEFAULT). */
export function retiredCounterKeys(retiredRuleKeys: readonly Buffer[]): Buffer[] {
  const tables = new Set(retiredRuleKeys.map((k) => decodeRuleKey(k).table));
  return [...retiredRuleKeys, ...[...tables].map((t) => encodeRuleKey(t, NF_RULE_DEFAULT))];
}

/** Deletes the counters of retired tables; returns how many existed. Per key, because a
 *  rule that never counted a packet has no entry (a batch delete stops at the first). */
export function pruneRuleStats(
  addon: Pick<NativeAddon, 'mapDelete'>,
  statsFd: number,
  retiredRuleKeys: readonly Buffer[],
): number {
  return retiredCounterKeys(retiredRuleKeys).filter((k) => addon.mapDelete(statsFd, k)).length;
}
