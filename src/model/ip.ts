// IP addresses and CIDRs as (family, bigint) pairs: strict parsing, canonical text
// (dotted quad, RFC 5952 for IPv6) and prefix containment. Used to validate input and
// to compare addresses regardless of how they were spelled.

export type Family = 4 | 6;

export interface IpAddr {
  family: Family;
  value: bigint;
}

export interface Cidr {
  family: Family;
  /** Network address (host bits cleared). */
  value: bigint;
  prefix: number;
}

const BITS: Record<Family, number> = { 4: 32, 6: 128 };

/** A dotted quad's value as a number, undefined for any other text (no BigInt or regex:
 *  every pod's address is one, decoded and encoded). */
export function dottedQuadValue(s: string): number | undefined {
  let v = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || ++dots > 3) return undefined;
      v = v * 256 + part;
      part = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      // A leading zero ("01") is refused, as Go's net.ParseIP does.
      if (digits > 0 && part === 0) return undefined;
      part = part * 10 + (c - 0x30);
      digits++;
      if (part > 255) return undefined;
    } else return undefined;
  }
  return dots === 3 && digits > 0 ? v * 256 + part : undefined;
}

function parseV4(s: string): bigint | undefined {
  const v = dottedQuadValue(s);
  return v === undefined ? undefined : BigInt(v);
}

function parseV6(s: string): bigint | undefined {
  let tail: bigint[] = [];
  let text = s;
  const lastColon = s.lastIndexOf(':');
  if (s.includes('.', lastColon)) {
    // Embedded IPv4 (::ffff:10.0.0.1): two trailing groups.
    const v4 = parseV4(s.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    tail = [v4 >> 16n, v4 & 0xffffn];
    text = s.slice(0, lastColon + 1) + '0';
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (h: string): bigint[] | undefined => {
    if (h === '') return [];
    const out: bigint[] = [];
    for (const g of h.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(BigInt(`0x${g}`));
    }
    return out;
  };
  const head = groups(halves[0]);
  const rest = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !rest) return undefined;
  let all = [...head, ...rest];
  if (tail.length) all = [...all.slice(0, -1), ...tail];
  const needed = 8 - all.length;
  if (halves.length === 2 ? needed < 1 : needed !== 0) return undefined;
  const full = halves.length === 2 ? [...head, ...Array<bigint>(needed).fill(0n), ...all.slice(head.length)] : all;
  return full.reduce((acc, g) => (acc << 16n) | g, 0n);
}

export function parseIp(s: string): IpAddr | undefined {
  if (typeof s !== 'string') return undefined;
  const v4 = parseV4(s);
  if (v4 !== undefined) return { family: 4, value: v4 };
  const v6 = s.includes(':') ? parseV6(s) : undefined;
  return v6 === undefined ? undefined : { family: 6, value: v6 };
}

export function formatIp(ip: IpAddr): string {
  if (ip.family === 4) {
    return [24n, 16n, 8n, 0n].map((sh) => String((ip.value >> sh) & 0xffn)).join('.');
  }
  const groups = Array.from({ length: 8 }, (_, i) => Number((ip.value >> BigInt(112 - 16 * i)) & 0xffffn));
  // RFC 5952: compress the longest run (>= 2) of zero groups, the first one on ties.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j > i ? j : i + 1;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** Canonical text of an address, or undefined when it is not an IP. */
export function canonicalIp(s: string): string | undefined {
  // A dotted quad that parses is canonical already (leading zeros are refused).
  if (typeof s === 'string' && dottedQuadValue(s) !== undefined) return s;
  const ip = parseIp(s);
  return ip && formatIp(ip);
}

/** Parses "addr/len"; host bits are cleared (as the Kubernetes API does). */
export function parseCidr(s: string): Cidr | undefined {
  if (typeof s !== 'string') return undefined;
  const slash = s.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIp(s.slice(0, slash));
  const len = s.slice(slash + 1);
  if (!ip || !/^(0|[1-9][0-9]{0,2})$/.test(len)) return undefined;
  const prefix = Number(len);
  if (prefix > BITS[ip.family]) return undefined;
  return { family: ip.family, prefix, value: ip.value & mask(ip.family, prefix) };
}

/** A CIDR, or a bare address as its full-length prefix, from trusted input (compiled
 *  rules, routes, config); host bits are cleared. Throws naming the text. */
export function toCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!ip) throw new Error(`parse CIDR "${text}": not an IPv4 or IPv6 address`);
  const len = slash < 0 ? String(BITS[ip.family]) : text.slice(slash + 1);
  const prefix = Number(len);
  if (!/^\d+$/.test(len) || prefix > BITS[ip.family])
    throw new Error(`parse CIDR "${text}": bad prefix length "${len}"`);
  return { family: ip.family, prefix, value: ip.value & mask(ip.family, prefix) };
}

export function formatCidr(c: Cidr): string {
  return `${formatIp({ family: c.family, value: c.value })}/${c.prefix}`;
}

function mask(family: Family, prefix: number): bigint {
  const bits = BigInt(BITS[family]);
  return ((1n << bits) - 1n) ^ ((1n << (bits - BigInt(prefix))) - 1n);
}

export function cidrContainsIp(c: Cidr, ip: IpAddr): boolean {
  return c.family === ip.family && (ip.value & mask(c.family, c.prefix)) === c.value;
}

/** True when `inner` lies inside `outer` (equal counts). */
export function cidrWithin(inner: Cidr, outer: Cidr): boolean {
  return inner.family === outer.family && inner.prefix >= outer.prefix && cidrContainsIp(outer, inner);
}

/** Convenience for text inputs; false when either side does not parse. */
export function ipInCidr(ip: string, cidr: string): boolean {
  const a = parseIp(ip);
  const c = parseCidr(cidr);
  return !!a && !!c && cidrContainsIp(c, a);
}

export function ipFamily(s: string): Family | undefined {
  return parseIp(s)?.family;
}
