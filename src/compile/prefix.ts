// Address prefixes over the 16-byte form (IPv4 as ::ffff:0:0/96 + prefix): the one
// space the datapath's tries use, so containment here matches what the trie does.
import { formatCidr, toCidr } from '../model/ip';
import { mappedPrefix, type MappedPrefix } from '../wire/addr';

export function toPrefix(cidr: string): MappedPrefix {
  return mappedPrefix(toCidr(cidr));
}

/** Canonical text of a CIDR or bare address ("10.0.0.1" -> "10.0.0.1/32"). */
export function canonicalCidr(cidr: string): string {
  return formatCidr(toCidr(cidr));
}

/** Does `outer` contain every address of `inner`? */
export function prefixContains(outer: MappedPrefix, inner: MappedPrefix): boolean {
  if (outer.bits > inner.bits) return false;
  const full = outer.bits >> 3;
  for (let i = 0; i < full; i++) if (outer.addr[i] !== inner.addr[i]) return false;
  const rest = outer.bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (outer.addr[full] & mask) === (inner.addr[full] & mask);
}
