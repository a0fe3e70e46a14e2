// One table's map entries: rules (action, tier bounds, names), the peer bitmaps
// (identity hash and CIDR trie) and the port trie. Tries hold every prefix of the
// table; a prefix's bitmap is what the longest match for an address in it must say.
import type { Tier } from '../model/rules';
import {
  NfAction,
  NfTier,
  bitmapFrom,
  encodeCidrKey,
  encodePeerIdentKey,
  encodePortKey,
  encodeRule,
  encodeRuleKey,
  keyHex,
  portRangePrefixes,
} from '../datapath/codecs';
import type { DesiredMaps, PolicyMapName } from './output';
import { prefixContains, toPrefix, type Prefix } from './prefix';
import type { CompiledRule } from './ruleset';

const TIER: Record<Tier, number> = {
  system: NfTier.SYSTEM,
  admin: NfTier.ADMIN,
  netpol: NfTier.NETPOL,
  baseline: NfTier.BASELINE,
};
const ACTION = { allow: NfAction.ALLOW, deny: NfAction.DENY, pass: NfAction.PASS } as const;

export function put(maps: DesiredMaps, map: PolicyMapName, key: Buffer, value: Buffer): void {
  maps[map].set(keyHex(key), { key, value });
}

/** Index of the first rule after each rule's tier (Pass jumps there). */
export function tierEnds(rules: CompiledRule[]): number[] {
  const ends = new Array<number>(rules.length);
  let end = rules.length;
  for (let i = rules.length - 1; i >= 0; i--) {
    if (i < rules.length - 1 && rules[i].tier !== rules[i + 1].tier) end = i + 1;
    ends[i] = end;
  }
  return ends;
}

/** A port-trie prefix: undefined proto = every protocol and port. */
export interface PortPrefix {
  proto?: number;
  port: number;
  bits: number; // 0..16
}

export function rulePortPrefixes(r: CompiledRule): PortPrefix[] {
  if (r.ports === null) return [{ port: 0, bits: 0 }];
  return r.ports.flatMap((b) =>
    portRangePrefixes(b.start, b.end).map((p) => ({ proto: b.proto, port: p.port, bits: p.portBits })),
  );
}

function portContains(outer: PortPrefix, inner: PortPrefix): boolean {
  if (outer.proto === undefined) return true;
  if (inner.proto !== outer.proto) return false;
  if (outer.bits > inner.bits) return false;
  const shift = 16 - outer.bits;
  return outer.bits === 0 || outer.port >>> shift === inner.port >>> shift;
}

/** Rules whose peer CIDRs contain `p` outside their own excepts. */
function cidrBitmap(rules: CompiledRule[], p: Prefix): number[] {
  const out: number[] = [];
  rules.forEach((r, i) => {
    const hit = r.peers.cidrs.some(
      (c) => prefixContains(toPrefix(c.cidr), p) && !c.except.some((e) => prefixContains(toPrefix(e), p)),
    );
    if (hit) out.push(i);
  });
  return out;
}

export function addTableEntries(
  maps: DesiredMaps,
  table: number,
  rules: CompiledRule[],
  policyId: (r: CompiledRule) => number,
): void {
  const ends = tierEnds(rules);
  rules.forEach((r, i) => {
    const value = { action: ACTION[r.action], tier: TIER[r.tier], tierEnd: ends[i], policyId: policyId(r), ruleId: r.ruleId };
    put(maps, 'nf_rules', encodeRuleKey(table, i), encodeRule(value));
  });

  const byIdentity = new Map<number, number[]>();
  rules.forEach((r, i) => r.peers.identities.forEach((id) => byIdentity.set(id, [...(byIdentity.get(id) ?? []), i])));
  for (const [id, bits] of byIdentity) put(maps, 'nf_peer_ident', encodePeerIdentKey(table, id), bitmapFrom(bits));

  // Every cidr and except is a trie prefix; an except prefix may map to an empty bitmap
  // (it must still shadow the shorter cidr around it).
  const cidrs = new Set(rules.flatMap((r) => r.peers.cidrs.flatMap((c) => [c.cidr, ...c.except])));
  for (const cidr of cidrs) {
    put(maps, 'nf_peer_cidr', encodeCidrKey(table, cidr), bitmapFrom(cidrBitmap(rules, toPrefix(cidr))));
  }

  const perRule = rules.map(rulePortPrefixes);
  const prefixes = new Map(perRule.flat().map((p) => [`${p.proto ?? '*'}:${p.port}/${p.bits}`, p]));
  for (const p of prefixes.values()) {
    const bits = perRule.flatMap((qs, i) => (qs.some((q) => portContains(q, p)) ? [i] : []));
    const key = p.proto === undefined ? encodePortKey({ table }) : encodePortKey({ table, proto: p.proto, port: p.port, portBits: p.bits });
    put(maps, 'nf_ports', key, bitmapFrom(bits));
  }
}
