// Host-order integers: the byte order of every wire field outside LPM keys and the
// network-order ports (bpf/include/netfence.h conventions).
import { endianness } from 'node:os';

/** Host byte order is little-endian (the bit layout of nf_bitmap words depends on it). */
export const HOST_LE = endianness() === 'LE';

export function w16(b: Buffer, off: number, v: number): void {
  if (HOST_LE) b.writeUInt16LE(v, off);
  else b.writeUInt16BE(v, off);
}
export function w32(b: Buffer, off: number, v: number): void {
  if (HOST_LE) b.writeUInt32LE(v >>> 0, off);
  else b.writeUInt32BE(v >>> 0, off);
}
export function w64(b: Buffer, off: number, v: bigint): void {
  if (HOST_LE) b.writeBigUInt64LE(v, off);
  else b.writeBigUInt64BE(v, off);
}
export function r16(b: Buffer, off: number): number {
  return HOST_LE ? b.readUInt16LE(off) : b.readUInt16BE(off);
}
export function r32(b: Buffer, off: number): number {
  return HOST_LE ? b.readUInt32LE(off) : b.readUInt32BE(off);
}
export function r64(b: Buffer, off: number): bigint {
  return HOST_LE ? b.readBigUInt64LE(off) : b.readBigUInt64BE(off);
}

/** A __u32 key or value (ifindex keys, identities, nf_config's index). */
export function encodeU32(v: number): Buffer {
  const b = Buffer.alloc(4);
  w32(b, 0, v);
  return b;
}
/** encodeU32 into a Buffer from the shared pool (a view, not an allocation of its own:
 *  a compile keeps one per identity). */
export function encodeU32Pooled(v: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  w32(b, 0, v);
  return b;
}
export function decodeU32(b: Buffer): number {
  return r32(b, 0);
}
/** A __u8 value (nf_svc_cidrs, nf_prefilter). */
export function encodeU8(v: number): Buffer {
  return Buffer.from([v & 0xff]);
}

/** Lower-case hex of a key (the MapContent key of compile/output.ts). */
export function keyHex(b: Buffer): string {
  return b.toString('hex');
}
