// Address prefixes over the 16-byte form (IPv4 as ::ffff:0:0/96 + prefix): the one
// space the datapath's tries use, so containment here matches what the trie does.
import { parseCidr, mappedPrefixLen, formatCidr } from '../datapath/codecs';

export interface Prefix {
  addr: Buffer; // 16 bytes, host bits cleared
  bits: number; // 0..128 over the 16-byte form
}

export function toPrefix(cidr: string): Prefix {
  const c = parseCidr(cidr);
  return { addr: c.addr, bits: mappedPrefixLen(c.family, c.prefixLen) };
}

/** Canonical text of a CIDR or bare address ("10.0.0.1" -> "10.0.0.1/32"). */
export function canonicalCidr(cidr: string): string {
  return formatCidr(parseCidr(cidr));
}

/** Does `outer` contain every address of `inner`? */
export function prefixContains(outer: Prefix, inner: Prefix): boolean {
  if (outer.bits > inner.bits) return false;
  const full = outer.bits >> 3;
  for (let i = 0; i < full; i++) if (outer.addr[i] !== inner.addr[i]) return false;
  const rest = outer.bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (outer.addr[full] & mask) === (inner.addr[full] & mask);
}
