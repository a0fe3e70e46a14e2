// One table's map entries: rules (action, tier bounds, names), the peer bitmaps
// (identity hash and CIDR trie) and the port trie. A table of more than NF_CHUNK_RULES
// rules is cut into chunks, each with its own bitmaps and tries, over its own rules
// only (bpf/include/netfence.h); nf_rules holds every rule by its global index. Tries
// hold every prefix of the chunk; a prefix's bitmap is what the longest match for an
// address in it must say.
import type { Tier } from '../model/rules';
import { bitmapFrom } from './bitmap';
import { portRangePrefixes } from './port-prefix';
import { NF_CHUNK_RULES, NfAction, NfTier } from '../wire/abi';
import type { MappedPrefix } from '../wire/addr';
import { keyHex } from '../wire/bytes';
import { chunkCount } from '../wire/endpoint';
import { encodeCidrKey, encodePeerIdentKey, encodePortKey, encodeRule, encodeRuleKey } from '../wire/tables';
import type { DesiredMaps } from './output';
import type { PolicyMapName } from '../wire/maps';
import { prefixContains, toPrefix } from './prefix';
import type { CompiledRule } from './ruleset';

/** Model tier and action -> their wire numbers (nf_rule.tier, nf_rule.action). */
export const TIER: Record<Tier, number> = {
  system: NfTier.SYSTEM,
  admin: NfTier.ADMIN,
  netpol: NfTier.NETPOL,
  baseline: NfTier.BASELINE,
};
export const ACTION = { allow: NfAction.ALLOW, deny: NfAction.DENY, pass: NfAction.PASS } as const;

export function putEntries(maps: Pick<DesiredMaps, TableMapName>, entries: readonly TableEntry[]): void {
  for (const e of entries) maps[e.map].set(e.hex, e.entry);
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

/** Indices of the rules whose peer CIDRs contain `p` outside their own excepts. */
function cidrBitmap(
  rulePrefixes: { index: number; cidrs: { outer: MappedPrefix; except: MappedPrefix[] }[] }[],
  p: MappedPrefix,
): number[] {
  return rulePrefixes.flatMap(({ index, cidrs }) =>
    cidrs.some((c) => prefixContains(c.outer, p) && !c.except.some((e) => prefixContains(e, p))) ? [index] : [],
  );
}

/** The maps keyed by table. */
export const TABLE_MAPS = ['nf_rules', 'nf_ports', 'nf_peer_cidr', 'nf_peer_ident'] as const;
export type TableMapName = (typeof TABLE_MAPS)[number];

export function isTableMap(m: PolicyMapName): m is TableMapName {
  return (TABLE_MAPS as readonly string[]).includes(m);
}

/** One map entry of a table, keyed by its hex key as DesiredMaps are. */
export interface TableEntry {
  map: TableMapName;
  hex: string;
  entry: { key: Buffer; value: Buffer };
}

/** Every map entry of one table, in write order; `policyIds[i]` is rule i's policy id. */
export function tableEntries(table: number, rules: CompiledRule[], policyIds: readonly number[]): TableEntry[] {
  const out: TableEntry[] = [];
  const add = (map: TableMapName, key: Buffer, value: Buffer) =>
    out.push({ map, hex: keyHex(key), entry: { key, value } });
  const ends = tierEnds(rules);
  rules.forEach((r, i) => {
    const value = {
      action: ACTION[r.action],
      tier: TIER[r.tier],
      tierEnd: ends[i],
      policyId: policyIds[i],
      ruleId: r.ruleId,
    };
    add('nf_rules', encodeRuleKey(table, i), encodeRule(value));
  });
  // A prefix's parse is shared by the chunks.
  const prefixes = new Map<string, MappedPrefix>();
  const prefix = (cidr: string): MappedPrefix => {
    let p = prefixes.get(cidr);
    if (!p) prefixes.set(cidr, (p = toPrefix(cidr)));
    return p;
  };
  for (let chunk = 0; chunk < chunkCount(rules.length); chunk++) {
    const first = chunk * NF_CHUNK_RULES;
    chunkEntries(
      table,
      chunk,
      rules.slice(first, first + NF_CHUNK_RULES).map((rule, i) => ({ rule, index: first + i })),
      prefix,
      add,
    );
  }
  return out;
}

/** The bitmap entries of one chunk: its rules with their global indices. */
function chunkEntries(
  table: number,
  chunk: number,
  rules: { rule: CompiledRule; index: number }[],
  prefix: (cidr: string) => MappedPrefix,
  add: (map: TableMapName, key: Buffer, value: Buffer) => void,
): void {
  const byIdentity = new Map<number, number[]>();
  for (const { rule, index } of rules) {
    for (const id of rule.peers.identities) {
      const bits = byIdentity.get(id);
      if (bits) bits.push(index);
      else byIdentity.set(id, [index]);
    }
  }
  for (const [id, bits] of byIdentity)
    add('nf_peer_ident', encodePeerIdentKey(table, id, chunk), bitmapFrom(bits, chunk));

  // Every cidr and except is a trie prefix; an except prefix may map to an empty bitmap
  // (it must still shadow the shorter cidr around it).
  const rulePrefixes = rules.map(({ rule, index }) => ({
    index,
    cidrs: rule.peers.cidrs.map((c) => ({ outer: prefix(c.cidr), except: c.except.map(prefix) })),
  }));
  const cidrs = new Set(rules.flatMap(({ rule }) => rule.peers.cidrs.flatMap((c) => [c.cidr, ...c.except])));
  for (const cidr of cidrs)
    add('nf_peer_cidr', encodeCidrKey(table, cidr, chunk), bitmapFrom(cidrBitmap(rulePrefixes, prefix(cidr)), chunk));

  const perRule = rules.map(({ rule, index }) => ({ index, ports: rulePortPrefixes(rule) }));
  const ports = new Map(perRule.flatMap((r) => r.ports).map((p) => [`${p.proto ?? '*'}:${p.port}/${p.bits}`, p]));
  for (const p of ports.values()) {
    const bits = perRule.flatMap((r) => (r.ports.some((q) => portContains(q, p)) ? [r.index] : []));
    const key =
      p.proto === undefined
        ? encodePortKey({ table, chunk })
        : encodePortKey({ table, chunk, proto: p.proto, port: p.port, portBits: p.bits });
    add('nf_ports', key, bitmapFrom(bits, chunk));
  }
}
