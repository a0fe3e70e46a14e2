// A userspace model of the datapath's lookup over compiled maps (exact identity hash,
// longest-prefix tries, first set bit, Pass skipping its tier): lets unit tests check
// that compiled bitmaps mean what the rules say without loading BPF.
import {
  NfAction,
  addrToBytes,
  bitmapIndices,
  decodeCidrKey,
  decodePortKey,
  decodeRule,
  decodeU32,
  encodePeerIdentKey,
  encodeRuleKey,
  keyHex,
  mappedPrefixLen,
} from '../../src/datapath/codecs';
import type { DesiredMaps } from '../../src/compile/output';
import { prefixContains } from '../../src/compile/prefix';

function longest<T>(entries: { bits: number; match: boolean; value: T }[]): T | undefined {
  let best: { bits: number; value: T } | undefined;
  for (const e of entries) if (e.match && (!best || e.bits > best.bits)) best = e;
  return best?.value;
}

export function portBitmap(maps: DesiredMaps, table: number, proto: number, port: number): number[] {
  const hits = [...maps.nf_ports.values()].map(({ key, value }) => {
    const k = decodePortKey(key);
    const bits = k.proto === undefined ? 0 : 8 + (k.portBits ?? 0);
    const shift = 16 - (k.portBits ?? 0);
    const match =
      k.table === table &&
      (k.proto === undefined || (k.proto === proto && (k.portBits === 0 || (k.port! >>> shift) === (port >>> shift))));
    return { bits, match, value };
  });
  const v = longest(hits);
  return v ? bitmapIndices(v) : [];
}

export function cidrBitmap(maps: DesiredMaps, table: number, ip: string): number[] {
  const addr = { addr: addrToBytes(ip), bits: 128 };
  const hits = [...maps.nf_peer_cidr.values()].map(({ key, value }) => {
    const k = decodeCidrKey(key);
    const p = { addr: k.cidr.addr, bits: mappedPrefixLen(k.cidr.family, k.cidr.prefixLen) };
    return { bits: p.bits, match: k.table === table && prefixContains(p, addr), value };
  });
  const v = longest(hits);
  return v ? bitmapIndices(v) : [];
}

export function identBitmap(maps: DesiredMaps, table: number, ip: string): number[] {
  const id = maps.nf_ident_exact.get(keyHex(addrToBytes(ip)));
  if (!id) return [];
  const v = maps.nf_peer_ident.get(keyHex(encodePeerIdentKey(table, decodeU32(id.value))));
  return v ? bitmapIndices(v.value) : [];
}

/** Index of the deciding rule, or undefined for the default allow. */
export function evalTable(maps: DesiredMaps, table: number, peer: string, proto: number, port: number): number | undefined {
  if (table === 0) return undefined;
  const ports = new Set(portBitmap(maps, table, proto, port));
  let m = [...new Set([...identBitmap(maps, table, peer), ...cidrBitmap(maps, table, peer)])]
    .filter((i) => ports.has(i))
    .sort((a, b) => a - b);
  while (m.length) {
    const idx = m[0];
    const r = decodeRule(maps.nf_rules.get(keyHex(encodeRuleKey(table, idx)))!.value);
    if (r.action !== NfAction.PASS) return idx;
    m = m.filter((i) => i >= r.tierEnd);
  }
  return undefined;
}
