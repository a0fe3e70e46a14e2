// Synthetic datapath policy for the benchmarks, encoded by hand with the wire codecs so the
// benchmark controls exactly what the kernel sees: one table isolating an endpoint, whose
// rules hold N CIDR prefixes and I peer identities, plus the isolation deny.
//
// Prefixes never overlap (one per slot), so each LPM entry's bitmap is just its rule plus
// the deny; the catch-all entry (table bits only) carries the deny for every other peer.
import { bitmapFrom } from '../src/compile/bitmap';
import { IPPROTO, NfAction, NfTier } from '../src/wire/abi';
import { encodeAddr } from '../src/wire/addr';
import { encodeU32 } from '../src/wire/bytes';
import type { PolicyMapName } from '../src/wire/maps';
import { encodeCidrKey, encodePeerIdentKey, encodePortKey, encodeRule, encodeRuleKey } from '../src/wire/tables';
import { prng } from './stats';

export interface PolicySpec {
  table: number;
  /** Number of CIDR prefixes in the table. */
  cidrs: number;
  /** Address families the prefixes are drawn from (split evenly). */
  families: readonly (4 | 6)[];
  /** Peer identities selected by rule 0 (one pod address per identity per family). */
  identities: number;
  /** Addresses that must be allowed: each becomes a full-length prefix of the last
   *  CIDR rule (when cidrs > 0), so lookups for them walk the trie to full depth. */
  probes: readonly string[];
  /** Allowed TCP destination port; undefined = every TCP port. */
  port?: number;
  seed?: number;
}

export type Entries = Partial<Record<PolicyMapName, { key: Buffer; value: Buffer }[]>>;

export interface BuiltPolicy {
  entries: Entries;
  rules: number;
  prefixes: string[];
  /** Prefixes grouped by CIDR rule (index 0 = rule 1): what one ipset per rule holds. */
  cidrRules: string[][];
  /** Identity pod addresses, index i = identity i + 1. */
  identityAddrs: { v4: string[]; v6: string[] };
}

/** Rules per table left for CIDR rules (rule 0 = identities, last = isolation deny). */
export const MAX_CIDR_RULES = 200;

function v4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

function hex4(n: number): string {
  return (n & 0xffff).toString(16);
}

/** `count` distinct, non-overlapping prefixes of one family. IPv4: one /25 slot of
 *  10.0.0.0/9 each, lengths 25..32. IPv6: one /64 slot of fd00:0::/32 each, lengths 64..128. */
export function syntheticPrefixes(family: 4 | 6, count: number, seed: number): string[] {
  const slots = family === 4 ? 1 << 16 : 2 ** 32;
  if (count > slots) throw new Error(`generate ${count} IPv${family} prefixes: at most ${slots} fit`);
  const rand = prng(seed);
  const used = new Set<number>();
  const out: string[] = [];
  while (out.length < count) {
    const slot = Math.floor(rand() * slots);
    if (used.has(slot)) continue;
    used.add(slot);
    if (family === 4) {
      const len = 25 + Math.floor(rand() * 8);
      const host = Math.floor(rand() * 128) & ~((1 << (32 - len)) - 1) & 127;
      out.push(`${v4((10 << 24) | (slot << 7) | host)}/${len}`);
    } else {
      const len = 64 + Math.floor(rand() * 65);
      const iid = [0, 0, 0, 0].map(() => Math.floor(rand() * 0x10000));
      // Clear the interface-id bits past the prefix length.
      const kept = len - 64;
      const groups = iid.map((g, i) => {
        const bits = Math.max(0, Math.min(16, kept - i * 16));
        return bits === 16 ? g : bits === 0 ? 0 : g & ((0xffff << (16 - bits)) & 0xffff);
      });
      out.push(`fd00:0:${hex4(slot >>> 16)}:${hex4(slot)}:${groups.map(hex4).join(':')}/${len}`);
    }
  }
  return out;
}

/** Identity pod addresses: 10.200.0.0/16 and fd00:1::/64 (outside every prefix slot). */
export function identityAddress(family: 4 | 6, i: number): string {
  return family === 4 ? v4((10 << 24) | (200 << 16) | (i + 1)) : `fd00:1::${hex4((i + 1) >>> 16)}:${hex4(i + 1)}`;
}

function fullPrefix(addr: string): string {
  return addr.includes(':') ? `${addr}/128` : `${addr}/32`;
}

export function buildPolicy(spec: PolicySpec): BuiltPolicy {
  const { table } = spec;
  const seed = spec.seed ?? 1;
  const cidrRules = Math.min(spec.cidrs, MAX_CIDR_RULES);
  const deny = cidrRules + 1;
  const ruleCount = cidrRules + 2;

  // Prefixes, split over the families; the probes replace the last ones.
  let prefixes: string[] = [];
  if (spec.cidrs > 0) {
    const per = spec.families.map(
      (_, i) => Math.floor(spec.cidrs / spec.families.length) + (i < spec.cidrs % spec.families.length ? 1 : 0),
    );
    spec.families.forEach((fam, i) => prefixes.push(...syntheticPrefixes(fam, per[i], seed + fam)));
    const probes = spec.probes.map(fullPrefix);
    prefixes = [...prefixes.slice(0, Math.max(0, prefixes.length - probes.length)), ...probes];
  }

  const rules: { key: Buffer; value: Buffer }[] = [];
  for (let i = 0; i < ruleCount; i++) {
    rules.push({
      key: encodeRuleKey(table, i),
      value: encodeRule({
        action: i === deny ? NfAction.DENY : NfAction.ALLOW,
        tier: NfTier.NETPOL,
        tierEnd: ruleCount,
        policyId: 0,
        ruleId: i,
      }),
    });
  }

  // Prefix i belongs to CIDR rule 1 + i % cidrRules; the probes (last) to the last rule.
  const byRule: string[][] = Array.from({ length: cidrRules }, () => []);
  const cidr = prefixes.map((p, i) => {
    const rule = i >= prefixes.length - spec.probes.length ? cidrRules : 1 + (i % cidrRules);
    byRule[rule - 1].push(p);
    return { key: encodeCidrKey(table, p), value: bitmapFrom([rule, deny]) };
  });
  // '::/0' = table bits only: every address of both families.
  cidr.push({ key: encodeCidrKey(table, '::/0'), value: bitmapFrom([deny]) });

  const identityAddrs = { v4: [] as string[], v6: [] as string[] };
  const identExact: { key: Buffer; value: Buffer }[] = [];
  const peerIdent: { key: Buffer; value: Buffer }[] = [];
  for (let i = 0; i < spec.identities; i++) {
    for (const fam of [4, 6] as const) {
      const a = identityAddress(fam, i);
      identityAddrs[fam === 4 ? 'v4' : 'v6'].push(a);
      identExact.push({ key: encodeAddr(a), value: encodeU32(i + 1) });
    }
    peerIdent.push({ key: encodePeerIdentKey(table, i + 1), value: bitmapFrom([0, deny]) });
  }

  const all = Array.from({ length: ruleCount }, (_, i) => i);
  const ports = [
    { key: encodePortKey({ table }), value: bitmapFrom([deny]) },
    {
      key: encodePortKey({ table, proto: IPPROTO.TCP, port: spec.port, portBits: spec.port === undefined ? 0 : 16 }),
      value: bitmapFrom(all),
    },
  ];

  return {
    entries: {
      nf_rules: rules,
      nf_peer_cidr: cidr,
      nf_ident_exact: identExact,
      nf_peer_ident: peerIdent,
      nf_ports: ports,
    },
    rules: ruleCount,
    prefixes,
    cidrRules: byRule,
    identityAddrs,
  };
}
