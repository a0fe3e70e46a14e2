// nf_ct_key and nf_ct_val: a conntrack flow. The key holds the flow's two ends in
// ascending (address bytes, port) order; the value's orig says which end opened it in
// which policy direction (bpf/include/netfence.h).
import { NfCtOrig, NfDir } from './abi';
import { bytesToAddr, encodeAddr } from './addr';
import { r16, r32, r64, w16, w32, w64 } from './bytes';
import { ADDR_BYTES, LAYOUT, alloc, checkSize } from './layout';

/** A conntrack flow as first seen: its policy direction and tuple. */
export interface CtKey {
  epId: number;
  dir: number;
  proto: number;
  saddr: string;
  daddr: string;
  /** Host-order numbers; stored in network order. */
  sport: number;
  dport: number;
}

export interface CtVal {
  lastSeenNs: bigint;
  revision: number;
  rule: number;
  flags: number;
  /** CLOCK_MONOTONIC ns (the coarse clock) from which the entry is void; 0n = none (open flow). */
  expiresNs: bigint;
}

const K = LAYOUT.nf_ct_key.fields;
const V = LAYOUT.nf_ct_val.fields;

/** The wire key and value of flow k with state v. */
export function encodeCt(k: CtKey, v: CtVal): { key: Buffer; value: Buffer } {
  const src = encodeAddr(k.saddr);
  const dst = encodeAddr(k.daddr);
  const byAddr = Buffer.compare(src, dst);
  const srcHi = byAddr > 0 || (byAddr === 0 && k.sport > k.dport);
  const key = alloc('nf_ct_key');
  w32(key, K.ep_id, k.epId);
  key[K.proto] = k.proto;
  (srcHi ? dst : src).copy(key, K.addr_lo);
  (srcHi ? src : dst).copy(key, K.addr_hi);
  key.writeUInt16BE(srcHi ? k.dport : k.sport, K.port_lo);
  key.writeUInt16BE(srcHi ? k.sport : k.dport, K.port_hi);
  const value = alloc('nf_ct_val');
  w64(value, V.last_seen_ns, v.lastSeenNs);
  w32(value, V.revision, v.revision);
  w16(value, V.rule, v.rule);
  value[V.flags] = v.flags;
  value[V.orig] = (k.dir === NfDir.EGRESS ? NfCtOrig.EGRESS : 0) | (srcHi ? NfCtOrig.SRC_HI : 0);
  w64(value, V.expires_ns, v.expiresNs);
  return { key, value };
}

export function decodeCt(key: Buffer, value: Buffer): { key: CtKey; val: CtVal } {
  checkSize('nf_ct_key', key);
  checkSize('nf_ct_val', value);
  const orig = value[V.orig];
  const srcHi = (orig & NfCtOrig.SRC_HI) !== 0;
  const lo = { addr: bytesToAddr(key.subarray(K.addr_lo, K.addr_lo + ADDR_BYTES)), port: key.readUInt16BE(K.port_lo) };
  const hi = { addr: bytesToAddr(key.subarray(K.addr_hi, K.addr_hi + ADDR_BYTES)), port: key.readUInt16BE(K.port_hi) };
  const [src, dst] = srcHi ? [hi, lo] : [lo, hi];
  return {
    key: {
      epId: r32(key, K.ep_id),
      dir: orig & NfCtOrig.EGRESS ? NfDir.EGRESS : NfDir.INGRESS,
      proto: key[K.proto],
      saddr: src.addr,
      daddr: dst.addr,
      sport: src.port,
      dport: dst.port,
    },
    val: {
      lastSeenNs: r64(value, V.last_seen_ns),
      revision: r32(value, V.revision),
      rule: r16(value, V.rule),
      flags: value[V.flags],
      expiresNs: r64(value, V.expires_ns),
    },
  };
}
