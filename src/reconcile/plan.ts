// Desired vs actual map contents -> the minimal diff: per map, the entries to write
// (new keys or changed values) and the keys to delete. Pure: no I/O.
import { type DesiredMaps, type MapContent, changedKeys } from '../compile/output';
import { MAP_WRITE_ORDER } from './order';
import type { PolicyMapName } from '../wire/maps';
import { decodeCidrKey, decodePeerIdentKey, decodePortKey, decodeRuleKey } from '../wire/tables';

export type ActualMaps = Record<PolicyMapName, MapContent>;

export interface Entry {
  key: Buffer;
  value: Buffer;
  /** The key's hex, when the diff had it (the journal looks the key up by it). */
  hex?: string;
}

export interface MapDiff {
  map: PolicyMapName;
  /** New or changed entries, in key order (deterministic plans). */
  updates: Entry[];
  /** Keys present now and absent from the desired content. */
  deletes: Buffer[];
}

/** Diffs in MAP_WRITE_ORDER; maps without changes are left out. */
export interface Plan {
  diffs: MapDiff[];
}

export function emptyMaps(): ActualMaps {
  return Object.fromEntries(MAP_WRITE_ORDER.map((m) => [m, new Map()])) as ActualMaps;
}

export function diffMap(map: PolicyMapName, desired: MapContent, actual: MapContent): MapDiff {
  // A Compiler hands out the same map again when its content did not change.
  if (desired === actual) return { map, updates: [], deletes: [] };
  // Only the changes are sorted: a small change to big maps stays cheap.
  const changed: string[] = [];
  const gone: string[] = [];
  const check = (want: Entry | undefined, hex: string): void => {
    const have = actual.get(hex);
    if (!want) {
      if (have) gone.push(hex);
    } else if (!have || (have.value !== want.value && !have.value.equals(want.value))) changed.push(hex);
  };
  // Derived from what was applied: only the keys it changed can differ.
  const keys = changedKeys(desired, actual);
  if (keys) keys.forEach((hex) => check(desired.get(hex), hex));
  else {
    // (forEach: no [key, value] pair allocated per entry.)
    desired.forEach(check);
    actual.forEach((_, hex) => {
      if (!desired.has(hex)) gone.push(hex);
    });
  }
  const updates: Entry[] = changed.sort().map((hex) => {
    const want = desired.get(hex)!;
    return { key: want.key, value: want.value, hex };
  });
  return { map, updates, deletes: gone.sort().map((hex) => actual.get(hex)!.key) };
}

export function planDiff(desired: DesiredMaps, actual: ActualMaps): Plan {
  const diffs = MAP_WRITE_ORDER.map((m) => diffMap(m, desired[m] ?? new Map(), actual[m] ?? new Map())).filter(
    (d) => d.updates.length > 0 || d.deletes.length > 0,
  );
  return { diffs };
}

/** The table a key belongs to, for maps keyed by table; undefined for the others. A
 *  chunk's bitmap key belongs to its base table (the decoders split the chunk off). */
export function tableOfKey(map: PolicyMapName, key: Buffer): number | undefined {
  switch (map) {
    case 'nf_rules':
      return decodeRuleKey(key).table;
    case 'nf_peer_ident':
      return decodePeerIdentKey(key).table;
    case 'nf_peer_cidr':
      return decodeCidrKey(key).table;
    case 'nf_ports':
      return decodePortKey(key).table;
    default:
      return undefined;
  }
}
