// A userspace model of the datapath's lookup over compiled maps (exact identity hash,
// longest-prefix tries per table chunk, first set bit over all chunks, Pass skipping
// its tier): lets unit tests check that compiled bitmaps mean what the rules say
// without loading BPF.
import { bitmapIndices } from '../../src/compile/bitmap';
import { NfAction } from '../../src/wire/abi';
import { encodeAddr, mappedPrefix } from '../../src/wire/addr';
import { decodeU32, keyHex } from '../../src/wire/bytes';
import { decodeCidrKey, decodePortKey, decodeRule, encodePeerIdentKey, encodeRuleKey } from '../../src/wire/tables';
import type { DesiredMaps } from '../../src/compile/output';
import { prefixContains } from '../../src/compile/prefix';

function longest<T>(entries: { bits: number; match: boolean; value: T }[]): T | undefined {
  let best: { bits: number; value: T } | undefined;
  for (const e of entries) if (e.match && (!best || e.bits > best.bits)) best = e;
  return best?.value;
}

/** Global indices of the rules of chunk `chunk` of `table` that match the port. */
export function portBitmap(maps: DesiredMaps, table: number, proto: number, port: number, chunk = 0): number[] {
  const hits = [...maps.nf_ports.values()].map(({ key, value }) => {
    const k = decodePortKey(key);
    const bits = k.proto === undefined ? 0 : 8 + (k.portBits ?? 0);
    const shift = 16 - (k.portBits ?? 0);
    const match =
      k.table === table &&
      k.chunk === chunk &&
      (k.proto === undefined || (k.proto === proto && (k.portBits === 0 || k.port! >>> shift === port >>> shift)));
    return { bits, match, value };
  });
  const v = longest(hits);
  return v ? bitmapIndices(v, chunk) : [];
}

export function cidrBitmap(maps: DesiredMaps, table: number, ip: string, chunk = 0): number[] {
  const addr = { addr: encodeAddr(ip), bits: 128 };
  const hits = [...maps.nf_peer_cidr.values()].map(({ key, value }) => {
    const k = decodeCidrKey(key);
    const p = mappedPrefix(k.cidr);
    return { bits: p.bits, match: k.table === table && k.chunk === chunk && prefixContains(p, addr), value };
  });
  const v = longest(hits);
  return v ? bitmapIndices(v, chunk) : [];
}

export function identBitmap(maps: DesiredMaps, table: number, ip: string, chunk = 0): number[] {
  const id = maps.nf_ident_exact.get(keyHex(encodeAddr(ip)));
  if (!id) return [];
  const v = maps.nf_peer_ident.get(keyHex(encodePeerIdentKey(table, decodeU32(id.value), chunk)));
  return v ? bitmapIndices(v.value, chunk) : [];
}

/** The chunks of `table` that have port entries (every chunk with a rule has some). */
export function tableChunks(maps: DesiredMaps, table: number): number[] {
  const chunks = new Set<number>();
  for (const { key } of maps.nf_ports.values()) {
    const k = decodePortKey(key);
    if (k.table === table) chunks.add(k.chunk);
  }
  return [...chunks].sort((a, b) => a - b);
}

/** Index of the deciding rule, or undefined for the default allow. */
export function evalTable(
  maps: DesiredMaps,
  table: number,
  peer: string,
  proto: number,
  port: number,
): number | undefined {
  if (table === 0) return undefined;
  let m = tableChunks(maps, table)
    .flatMap((chunk) => {
      const ports = new Set(portBitmap(maps, table, proto, port, chunk));
      return [...new Set([...identBitmap(maps, table, peer, chunk), ...cidrBitmap(maps, table, peer, chunk)])].filter(
        (i) => ports.has(i),
      );
    })
    .sort((a, b) => a - b);
  while (m.length) {
    const idx = m[0];
    const r = decodeRule(maps.nf_rules.get(keyHex(encodeRuleKey(table, idx)))!.value);
    if (r.action !== NfAction.PASS) return idx;
    m = m.filter((i) => i >= r.tierEnd);
  }
  return undefined;
}
