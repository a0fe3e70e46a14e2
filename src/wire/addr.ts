// The 16-byte address form of the wire (IPv4 as ::ffff:a.b.c.d, so one trie serves both
// families) and the structs keyed by it: nf_addr and nf_addr_lpm_key. Text is parsed
// and printed by model/ip.ts, the one IP parser; this module only maps its values to
// and from bytes. It is wire's one import from outside src/wire/.
import { dottedQuadValue, formatIp, parseIp, toCidr, type Cidr, type Family, type IpAddr } from '../model/ip';
import { r32, w32 } from './bytes';
import { ADDR_BYTES, LAYOUT, alloc, checkSize } from './layout';

/** Bits the IPv4-mapped prefix ::ffff:0:0/96 puts in front of an IPv4 address. */
const V4_MAPPED_BITS = 96;
const V4_MAPPED = 0xffffn << 32n;

/** An address in the 16-byte form. */
export function ipBytes(ip: IpAddr): Buffer {
  const v = ip.family === 4 ? V4_MAPPED | ip.value : ip.value;
  const b = Buffer.alloc(ADDR_BYTES);
  b.writeBigUInt64BE(v >> 64n, 0);
  b.writeBigUInt64BE(v & 0xffffffffffffffffn, 8);
  return b;
}

function bytesValue(b: Buffer): bigint {
  if (b.length !== ADDR_BYTES) throw new Error(`decode address: ${b.length} bytes, need ${ADDR_BYTES}`);
  return (b.readBigUInt64BE(0) << 64n) | b.readBigUInt64BE(8);
}

/** The 16-byte form -> an address (IPv4-mapped ones as IPv4). */
export function bytesIp(b: Buffer): IpAddr {
  const v = bytesValue(b);
  return v >> 32n === 0xffffn ? { family: 4, value: v & 0xffffffffn } : { family: 6, value: v };
}

/** nf_addr: text IP (v4 or v6) -> the 16-byte form. */
export function encodeAddr(ip: string): Buffer {
  const a = parseIp(ip);
  if (!a) throw new Error(`encode address "${ip}": not an IPv4 or IPv6 address`);
  return ipBytes(a);
}

/** encodeAddr into a Buffer from the shared pool (a view, not an allocation of its own:
 *  a compile keeps one per pod address). */
export function encodeAddrPooled(ip: string): Buffer {
  const v4 = dottedQuadValue(ip);
  if (v4 === undefined) {
    const b = encodeAddr(ip);
    const copy = Buffer.allocUnsafe(ADDR_BYTES);
    b.copy(copy);
    return copy;
  }
  const b = Buffer.allocUnsafe(ADDR_BYTES);
  b.fill(0, 0, 10);
  b[10] = b[11] = 0xff;
  b.writeUInt32BE(v4, 12);
  return b;
}

/** The 16-byte form -> text (dotted quad for IPv4-mapped, RFC 5952 IPv6 otherwise). */
export function bytesToAddr(b: Buffer): string {
  return formatIp(bytesIp(b));
}

/** A prefix over the 16-byte form: the space of the datapath's tries. */
export interface MappedPrefix {
  /** 16 bytes, host bits cleared */
  addr: Buffer;
  /** 0..128 */
  bits: number;
}

/** Prefix length in the family's terms -> bits over the 16-byte form. */
export function mappedPrefixLen(family: Family, prefixLen: number): number {
  const max = family === 4 ? 32 : 128;
  if (!Number.isInteger(prefixLen) || prefixLen < 0 || prefixLen > max) {
    throw new Error(`encode prefix: length ${prefixLen} out of range 0..${max} for IPv${family}`);
  }
  return family === 4 ? prefixLen + V4_MAPPED_BITS : prefixLen;
}

export function mappedPrefix(c: Cidr): MappedPrefix {
  return { addr: ipBytes(c), bits: mappedPrefixLen(c.family, c.prefix) };
}

/** The inverse of mappedPrefix: a prefix inside ::ffff:0:0/96 is IPv4. */
export function unmappedCidr(p: MappedPrefix): Cidr {
  const ip = bytesIp(p.addr);
  return ip.family === 4 && p.bits >= V4_MAPPED_BITS
    ? { ...ip, prefix: p.bits - V4_MAPPED_BITS }
    : { family: 6, value: bytesValue(p.addr), prefix: p.bits };
}

const K = LAYOUT.nf_addr_lpm_key.fields;

/** nf_addr_lpm_key (nf_ident_lpm, nf_svc_cidrs, nf_prefilter) from a CIDR text. */
export function encodeAddrLpmKey(cidr: string): Buffer {
  const p = mappedPrefix(toCidr(cidr));
  const b = alloc('nf_addr_lpm_key');
  w32(b, K.prefixlen, p.bits);
  p.addr.copy(b, K.addr);
  return b;
}

export function decodeAddrLpmKey(b: Buffer): Cidr {
  checkSize('nf_addr_lpm_key', b);
  return unmappedCidr({ addr: b.subarray(K.addr, K.addr + ADDR_BYTES), bits: r32(b, K.prefixlen) });
}
