// Codecs for the wire structs of bpf/include/netfence.h: sizes, offsets and
// constants mirror the header (test/bpf/btf-layout.test.ts checks them against
// the object's BTF). Integers are host order except the big-endian fields inside
// LPM keys and the network-order ports of conntrack keys and events.
import { isIP } from 'node:net';
import { endianness } from 'node:os';

export const NF_LAYOUT_VERSION = 4;
/** Rules per chunk (one bitmap); a table spans up to NF_MAX_CHUNKS chunks. */
export const NF_CHUNK_RULES = 256;
export const NF_BITMAP_WORDS = NF_CHUNK_RULES / 64;
/** Chunk c of table t keys its bitmaps (nf_peer_ident, nf_peer_cidr, nf_ports) by t | c << NF_CHUNK_SHIFT. */
export const NF_CHUNK_SHIFT = 24;
/** Table ids live in the low NF_CHUNK_SHIFT bits. */
export const NF_TABLE_MASK = (1 << NF_CHUNK_SHIFT) - 1;
export const NF_MAX_CHUNKS = 64;
export const NF_MAX_RULES = NF_CHUNK_RULES * NF_MAX_CHUNKS;
export const NF_TABLE_NONE = 0;
/** Reserved table id: deny all in that direction without a map lookup (the last resort of
 *  an endpoint whose isolation table does not fit). The compiler never assigns it. */
export const NF_TABLE_DENY = NF_TABLE_MASK;
export const NF_RULE_DEFAULT = 0xffffffff;
/** nf_ct_val.rule for a flow allowed by the default (no rule matched). */
export const NF_CT_RULE_DEFAULT = 0xffff;
/** Life of a closing conntrack entry past its last packet (nf_ct_val.expires_ns). */
export const NF_CT_CLOSE_TIMEOUT_NS = 10_000_000_000n;

export const NfDir = { INGRESS: 0, EGRESS: 1 } as const;
export const NfAction = { NONE: 0, ALLOW: 1, DENY: 2, PASS: 3 } as const;
export const NfTier = { SYSTEM: 0, ADMIN: 1, NETPOL: 2, BASELINE: 3, DEFAULT: 4 } as const;
export const NfEpFlag = { POD: 1 << 0, HOST: 1 << 1, TUNNEL: 1 << 2, SECONDARY: 1 << 3, KEEP_ESTABLISHED: 1 << 4, SRC_CHECK: 1 << 5, SVC_CIDRS: 1 << 6, LOCAL_DELIVERY: 1 << 7 } as const;
export const NfCtFlag = { DEFERRED: 1 << 0, SEEN_REPLY: 1 << 1, NO_TUNNEL: 1 << 2, FIN_FWD: 1 << 3, FIN_REPLY: 1 << 4, CLOSING: 1 << 5 } as const;
export const NfLocalKind = { POD: 1, NODE: 2 } as const;
export const NfEpVerdict = { ALLOWED: 0, DENIED: 1 } as const;
export const NfCfgFlag = { TUNNEL_FWMARK: 1 << 0, TUNNEL_DIRECT: 1 << 1, TUNNEL_OFF4: 1 << 2, TUNNEL_OFF6: 1 << 3 } as const;
export const NfReason = {
  NONE: 0,
  POLICY_DENY: 1,
  ISOLATED: 2,
  MALFORMED: 3,
  REVISION_DENY: 4,
  PREFILTER: 5,
  /** a pass, not a drop: ICMP errors related to a tracked flow */
  RELATED: 6,
  MAX: 7,
} as const;
export const NF_REASON_DESC: readonly string[] = [
  'none',
  'policy_deny',
  'isolated',
  'malformed',
  'revision_deny',
  'prefilter',
  'related',
];
export const IPPROTO = { ICMP: 1, TCP: 6, UDP: 17, ICMPV6: 58, SCTP: 132 } as const;

/** Struct sizes and field offsets (bytes), keyed by C struct and field name. */
export const LAYOUT = {
  nf_endpoint: { size: 24, fields: { id: 0, table: 4, flags: 12, revision: 16, chunks: 20, _pad: 22 } },
  nf_addr: { size: 16, fields: { a: 0 } },
  nf_addr_lpm_key: { size: 20, fields: { prefixlen: 0, addr: 4 } },
  nf_bitmap: { size: 32, fields: { w: 0 } },
  nf_peer_ident_key: { size: 8, fields: { table: 0, identity: 4 } },
  nf_cidr_key: { size: 24, fields: { prefixlen: 0, table: 4, addr: 8 } },
  nf_port_key: { size: 12, fields: { prefixlen: 0, table: 4, proto: 8, port: 9, _pad: 11 } },
  nf_rule_key: { size: 8, fields: { table: 0, index: 4 } },
  nf_rule: { size: 16, fields: { action: 0, tier: 1, tier_end: 2, policy_id: 4, rule_id: 8, _pad: 12 } },
  nf_counter: { size: 16, fields: { packets: 0, bytes: 8 } },
  nf_ep_stats_key: { size: 8, fields: { ep_id: 0, dir: 4, verdict: 5, _pad: 6 } },
  nf_ct_key: {
    size: 44,
    fields: { ep_id: 0, _pad0: 4, proto: 5, _pad: 6, addr_lo: 8, addr_hi: 24, port_lo: 40, port_hi: 42 },
  },
  nf_ct_val: { size: 24, fields: { last_seen_ns: 0, revision: 8, rule: 12, flags: 14, orig: 15, expires_ns: 16 } },
  nf_local: { size: 20, fields: { ifindex: 0, kind: 4, pod_mac: 8, host_mac: 14 } },
  nf_config: {
    size: 48,
    fields: {
      layout_version: 0,
      flags: 4,
      tunnel_mark: 8,
      tunnel_mark_mask: 12,
      uplink_ifindex: 16,
      events_per_sec: 20,
      gateway6: 24,
      gateway4: 40,
      _pad: 44,
    },
  },
  nf_event: {
    size: 72,
    fields: {
      ts_ns: 0,
      ep_id: 8,
      ifindex: 12,
      table: 16,
      policy_id: 20,
      rule_id: 24,
      rule_index: 28,
      dir: 30,
      proto: 31,
      reason: 32,
      action: 33,
      sport: 34,
      dport: 36,
      _pad: 38,
      saddr: 40,
      daddr: 56,
    },
  },
  nf_ratelimit: { size: 16, fields: { window_start_ns: 0, count: 8, _pad: 12 } },
} as const;

export type StructName = keyof typeof LAYOUT;

// ---- host-order integer access -------------------------------------------------

const LE = endianness() === 'LE';

function w16(b: Buffer, off: number, v: number): void {
  if (LE) b.writeUInt16LE(v, off);
  else b.writeUInt16BE(v, off);
}
function w32(b: Buffer, off: number, v: number): void {
  if (LE) b.writeUInt32LE(v >>> 0, off);
  else b.writeUInt32BE(v >>> 0, off);
}
function w64(b: Buffer, off: number, v: bigint): void {
  if (LE) b.writeBigUInt64LE(v, off);
  else b.writeBigUInt64BE(v, off);
}
function r16(b: Buffer, off: number): number {
  return LE ? b.readUInt16LE(off) : b.readUInt16BE(off);
}
function r32(b: Buffer, off: number): number {
  return LE ? b.readUInt32LE(off) : b.readUInt32BE(off);
}
function r64(b: Buffer, off: number): bigint {
  return LE ? b.readBigUInt64LE(off) : b.readBigUInt64BE(off);
}

function checkSize(name: StructName, b: Buffer): void {
  if (b.length < LAYOUT[name].size) {
    throw new Error(`decode ${name}: buffer of ${b.length} bytes, need ${LAYOUT[name].size}`);
  }
}

function alloc(name: StructName): Buffer {
  return Buffer.alloc(LAYOUT[name].size);
}

export function encodeU32(v: number): Buffer {
  const b = Buffer.alloc(4);
  w32(b, 0, v);
  return b;
}
export function decodeU32(b: Buffer): number {
  return r32(b, 0);
}
export function encodeU8(v: number): Buffer {
  return Buffer.from([v & 0xff]);
}

// ---- addresses -------------------------------------------------------------------

export type Family = 4 | 6;

function parseV6(text: string): Buffer {
  const out = Buffer.alloc(16);
  let s = text;
  // A trailing dotted quad (::ffff:1.2.3.4) becomes the last two groups.
  const lastColon = s.lastIndexOf(':');
  const tail = s.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = parseV4(tail);
    s = `${s.slice(0, lastColon + 1)}${v4.readUInt16BE(0).toString(16)}:${v4.readUInt16BE(2).toString(16)}`;
  }
  const [head, rest] = s.split('::');
  const hg = head ? head.split(':') : [];
  const tg = rest !== undefined && rest !== '' ? rest.split(':') : [];
  const groups = rest === undefined ? hg : [...hg, ...Array<string>(8 - hg.length - tg.length).fill('0'), ...tg];
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function parseV4(text: string): Buffer {
  return Buffer.from(text.split('.').map((o) => Number(o)));
}

/** Text IP (v4 or v6) -> 16-byte form (IPv4 as ::ffff:a.b.c.d). */
export function addrToBytes(ip: string): Buffer {
  const fam = isIP(ip);
  if (fam === 4) {
    const b = Buffer.alloc(16);
    b[10] = 0xff;
    b[11] = 0xff;
    parseV4(ip).copy(b, 12);
    return b;
  }
  if (fam === 6) return parseV6(ip);
  throw new Error(`encode address "${ip}": not an IPv4 or IPv6 address`);
}

export function isV4Mapped(b: Buffer): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/** 16-byte form -> text (dotted quad for IPv4-mapped, compressed IPv6 otherwise). */
export function bytesToAddr(b: Buffer): string {
  if (b.length !== 16) throw new Error(`decode address: ${b.length} bytes, need 16`);
  if (isV4Mapped(b)) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(b.readUInt16BE(i * 2));
  // Longest run of zero groups (length >= 2) becomes "::" (RFC 5952).
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

export interface Cidr {
  family: Family;
  /** 16-byte form with host bits cleared. */
  addr: Buffer;
  /** Prefix length in terms of the family (0..32 or 0..128). */
  prefixLen: number;
}

/** Prefix length in the family's terms -> bits over the 16-byte form. */
export function mappedPrefixLen(family: Family, prefixLen: number): number {
  const max = family === 4 ? 32 : 128;
  if (!Number.isInteger(prefixLen) || prefixLen < 0 || prefixLen > max) {
    throw new Error(`encode prefix: length ${prefixLen} out of range 0..${max} for IPv${family}`);
  }
  return family === 4 ? prefixLen + 96 : prefixLen;
}

/** The inverse of mappedPrefixLen: bits over the 16-byte form -> a Cidr of its family. */
function unmappedCidr(addr: Buffer, bits: number): Cidr {
  const v4 = isV4Mapped(addr) && bits >= 96;
  return { family: v4 ? 4 : 6, prefixLen: v4 ? bits - 96 : bits, addr };
}

function maskBits(b: Buffer, bits: number): Buffer {
  const out = Buffer.from(b);
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    out[i] &= keep === 8 ? 0xff : (0xff << (8 - keep)) & 0xff;
  }
  return out;
}

/** "10.0.0.0/8", "fd00::/8" or a bare address (full length) -> Cidr. */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  const ip = slash < 0 ? text : text.slice(0, slash);
  const family = isIP(ip);
  if (family === 0) throw new Error(`parse CIDR "${text}": not an IPv4 or IPv6 address`);
  const fam = family as Family;
  const lenText = slash < 0 ? String(fam === 4 ? 32 : 128) : text.slice(slash + 1);
  const prefixLen = Number(lenText);
  if (!/^\d+$/.test(lenText) || prefixLen > (fam === 4 ? 32 : 128)) {
    throw new Error(`parse CIDR "${text}": bad prefix length "${lenText}"`);
  }
  return { family: fam, prefixLen, addr: maskBits(addrToBytes(ip), mappedPrefixLen(fam, prefixLen)) };
}

export function formatCidr(c: Cidr): string {
  return `${bytesToAddr(c.addr)}/${c.prefixLen}`;
}

// ---- keys and values -------------------------------------------------------------

export function encodeAddr(ip: string): Buffer {
  return addrToBytes(ip);
}

/** nf_addr_lpm_key (nf_ident_lpm, nf_svc_cidrs, nf_prefilter) from a CIDR text. */
export function encodeAddrLpmKey(cidr: string): Buffer {
  const c = parseCidr(cidr);
  const b = alloc('nf_addr_lpm_key');
  w32(b, 0, mappedPrefixLen(c.family, c.prefixLen));
  c.addr.copy(b, 4);
  return b;
}

export function decodeAddrLpmKey(b: Buffer): Cidr {
  checkSize('nf_addr_lpm_key', b);
  return unmappedCidr(Buffer.from(b.subarray(4, 20)), r32(b, 0));
}

export interface Endpoint {
  id: number;
  ingressTable: number;
  egressTable: number;
  /** Chunks of each direction's table (chunkCount of its rules; 0 without a table). */
  ingressChunks: number;
  egressChunks: number;
  flags: number;
  revision: number;
}

/** Chunks a table of `rules` rules spans (0 rules: no table, no chunk). */
export function chunkCount(rules: number): number {
  return Math.ceil(rules / NF_CHUNK_RULES);
}

function checkChunks(e: Endpoint): void {
  for (const [field, n] of [['ingressChunks', e.ingressChunks], ['egressChunks', e.egressChunks]] as const) {
    if (!Number.isInteger(n) || n < 0 || n > NF_MAX_CHUNKS) throw new Error(`encode nf_endpoint.${field}: ${n} out of range 0..${NF_MAX_CHUNKS}`);
  }
}

export function encodeEndpoint(e: Endpoint): Buffer {
  checkChunks(e);
  const b = alloc('nf_endpoint');
  w32(b, 0, e.id);
  w32(b, 4 + 4 * NfDir.INGRESS, e.ingressTable);
  w32(b, 4 + 4 * NfDir.EGRESS, e.egressTable);
  w32(b, 12, e.flags);
  w32(b, 16, e.revision);
  b[LAYOUT.nf_endpoint.fields.chunks + NfDir.INGRESS] = e.ingressChunks;
  b[LAYOUT.nf_endpoint.fields.chunks + NfDir.EGRESS] = e.egressChunks;
  return b;
}

export function decodeEndpoint(b: Buffer): Endpoint {
  checkSize('nf_endpoint', b);
  return {
    id: r32(b, 0),
    ingressTable: r32(b, 4 + 4 * NfDir.INGRESS),
    egressTable: r32(b, 4 + 4 * NfDir.EGRESS),
    ingressChunks: b[LAYOUT.nf_endpoint.fields.chunks + NfDir.INGRESS],
    egressChunks: b[LAYOUT.nf_endpoint.fields.chunks + NfDir.EGRESS],
    flags: r32(b, 12),
    revision: r32(b, 16),
  };
}

/** Bitmap over the rules of one chunk: bit i of host-order u64 word i/64 = rule
 *  chunk * NF_CHUNK_RULES + i. The functions below take and return global rule
 *  indices, with the chunk (default 0) the bitmap belongs to. */
export function bitmapNew(): Buffer {
  return alloc('nf_bitmap');
}

function bitPos(global: number, chunk: number): { byte: number; mask: number } {
  const first = chunk * NF_CHUNK_RULES;
  const i = global - first;
  if (!Number.isInteger(i) || i < 0 || i >= NF_CHUNK_RULES) {
    throw new Error(`bitmap: rule index ${global} out of range ${first}..${first + NF_CHUNK_RULES - 1} (chunk ${chunk})`);
  }
  const word = Math.floor(i / 64);
  const bit = i % 64;
  const byteInWord = LE ? Math.floor(bit / 8) : 7 - Math.floor(bit / 8);
  return { byte: word * 8 + byteInWord, mask: 1 << (bit % 8) };
}

export function bitmapSet(b: Buffer, i: number, chunk = 0): Buffer {
  const p = bitPos(i, chunk);
  b[p.byte] |= p.mask;
  return b;
}

export function bitmapClear(b: Buffer, i: number, chunk = 0): Buffer {
  const p = bitPos(i, chunk);
  b[p.byte] &= ~p.mask & 0xff;
  return b;
}

export function bitmapTest(b: Buffer, i: number, chunk = 0): boolean {
  const p = bitPos(i, chunk);
  return (b[p.byte] & p.mask) !== 0;
}

export function bitmapFrom(indices: Iterable<number>, chunk = 0): Buffer {
  const b = bitmapNew();
  for (const i of indices) bitmapSet(b, i, chunk);
  return b;
}

export function bitmapIndices(b: Buffer, chunk = 0): number[] {
  checkSize('nf_bitmap', b);
  const out: number[] = [];
  const first = chunk * NF_CHUNK_RULES;
  for (let i = first; i < first + NF_CHUNK_RULES; i++) if (bitmapTest(b, i, chunk)) out.push(i);
  return out;
}

export function bitmapOr(a: Buffer, b: Buffer): Buffer {
  const out = bitmapNew();
  for (let i = 0; i < out.length; i++) out[i] = a[i] | b[i];
  return out;
}

/** The table field of a chunk's bitmap keys: table | chunk << NF_CHUNK_SHIFT. */
export function chunkKeyTable(table: number, chunk: number): number {
  if (!Number.isInteger(table) || table < 0 || table > NF_TABLE_MASK) {
    throw new Error(`encode table key: table id ${table} out of range 0..${NF_TABLE_MASK}`);
  }
  if (!Number.isInteger(chunk) || chunk < 0 || chunk >= NF_MAX_CHUNKS) {
    throw new Error(`encode table key: chunk ${chunk} out of range 0..${NF_MAX_CHUNKS - 1}`);
  }
  return (table | (chunk << NF_CHUNK_SHIFT)) >>> 0;
}

/** The inverse of chunkKeyTable: base table id and chunk. */
function splitKeyTable(field: number): { table: number; chunk: number } {
  return { table: field & NF_TABLE_MASK, chunk: field >>> NF_CHUNK_SHIFT };
}

export function encodePeerIdentKey(table: number, identity: number, chunk = 0): Buffer {
  const b = alloc('nf_peer_ident_key');
  w32(b, 0, chunkKeyTable(table, chunk));
  w32(b, 4, identity);
  return b;
}

export function decodePeerIdentKey(b: Buffer): { table: number; chunk: number; identity: number } {
  checkSize('nf_peer_ident_key', b);
  return { ...splitKeyTable(r32(b, 0)), identity: r32(b, 4) };
}

/** nf_peer_cidr key: table chunk + CIDR (prefix length in the family's terms). */
export function encodeCidrKey(table: number, cidr: string, chunk = 0): Buffer {
  const c = parseCidr(cidr);
  const b = alloc('nf_cidr_key');
  w32(b, 0, 32 + mappedPrefixLen(c.family, c.prefixLen));
  b.writeUInt32BE(chunkKeyTable(table, chunk), 4);
  c.addr.copy(b, 8);
  return b;
}

export function decodeCidrKey(b: Buffer): { table: number; chunk: number; cidr: Cidr } {
  checkSize('nf_cidr_key', b);
  return { ...splitKeyTable(b.readUInt32BE(4)), cidr: unmappedCidr(Buffer.from(b.subarray(8, 24)), r32(b, 0) - 32) };
}

export interface PortKey {
  table: number;
  /** The table's chunk (default 0). */
  chunk?: number;
  /** undefined = every protocol (and port). */
  proto?: number;
  /** Port prefix value (host order number); ignored without proto. */
  port?: number;
  /** Port bits 0..16 (0 = every port of the protocol). */
  portBits?: number;
}

export function encodePortKey(k: PortKey): Buffer {
  const b = alloc('nf_port_key');
  b.writeUInt32BE(chunkKeyTable(k.table, k.chunk ?? 0), 4);
  if (k.proto === undefined) {
    w32(b, 0, 32);
    return b;
  }
  const bits = k.portBits ?? (k.port === undefined ? 0 : 16);
  if (!Number.isInteger(bits) || bits < 0 || bits > 16) {
    throw new Error(`encode port key: port prefix length ${bits} out of range 0..16`);
  }
  const port = k.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
    throw new Error(`encode port key: port ${port} out of range 0..65535`);
  }
  const mask = bits === 0 ? 0 : (0xffff << (16 - bits)) & 0xffff;
  w32(b, 0, 40 + bits);
  b[8] = k.proto;
  b.writeUInt16BE(port & mask, 9);
  return b;
}

export function decodePortKey(b: Buffer): PortKey & { chunk: number } {
  checkSize('nf_port_key', b);
  const bits = r32(b, 0);
  const t = splitKeyTable(b.readUInt32BE(4));
  if (bits < 40) return t;
  return { ...t, proto: b[8], port: b.readUInt16BE(9), portBits: bits - 40 };
}

/** Split an inclusive port range into LPM prefixes (value, bits). */
export function portRangePrefixes(start: number, end: number): { port: number; portBits: number }[] {
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > 0xffff || start > end) {
    throw new Error(`split port range ${start}-${end}: need 0 <= start <= end <= 65535`);
  }
  const out: { port: number; portBits: number }[] = [];
  let p = start;
  while (p <= end) {
    let size = 1;
    let bits = 16;
    // Grow the block while it stays aligned and inside the range.
    while (bits > 0 && p % (size * 2) === 0 && p + size * 2 - 1 <= end) {
      size *= 2;
      bits--;
    }
    out.push({ port: p, portBits: bits });
    p += size;
  }
  return out;
}

export function encodeRuleKey(table: number, index: number): Buffer {
  const b = alloc('nf_rule_key');
  w32(b, 0, table);
  w32(b, 4, index);
  return b;
}

export function decodeRuleKey(b: Buffer): { table: number; index: number } {
  checkSize('nf_rule_key', b);
  return { table: r32(b, 0), index: r32(b, 4) };
}

export interface RuleValue {
  action: number;
  tier: number;
  tierEnd: number;
  policyId: number;
  ruleId: number;
}

export function encodeRule(r: RuleValue): Buffer {
  const b = alloc('nf_rule');
  b[0] = r.action;
  b[1] = r.tier;
  w16(b, 2, r.tierEnd);
  w32(b, 4, r.policyId);
  w32(b, 8, r.ruleId);
  return b;
}

export function decodeRule(b: Buffer): RuleValue {
  checkSize('nf_rule', b);
  return { action: b[0], tier: b[1], tierEnd: r16(b, 2), policyId: r32(b, 4), ruleId: r32(b, 8) };
}

export interface Counter {
  packets: bigint;
  bytes: bigint;
}

/** Per-CPU value stride: value size rounded up to 8 bytes. */
export function perCpuStride(valueSize: number): number {
  return Math.ceil(valueSize / 8) * 8;
}

/** Sum a per-CPU nf_counter lookup result over possibleCpus. */
export function sumPerCpuCounters(b: Buffer, possibleCpus: number): Counter {
  const stride = perCpuStride(LAYOUT.nf_counter.size);
  if (b.length < stride * possibleCpus) {
    throw new Error(`decode per-CPU nf_counter: ${b.length} bytes, need ${stride * possibleCpus}`);
  }
  let packets = 0n;
  let bytes = 0n;
  for (let c = 0; c < possibleCpus; c++) {
    packets += r64(b, c * stride);
    bytes += r64(b, c * stride + 8);
  }
  return { packets, bytes };
}

/** A zeroed per-CPU nf_counter value (to reset a counter). */
export function zeroPerCpuCounters(possibleCpus: number): Buffer {
  return Buffer.alloc(perCpuStride(LAYOUT.nf_counter.size) * possibleCpus);
}

export interface EpStatsKey {
  epId: number;
  dir: number; // NfDir
  verdict: number; // NfEpVerdict
}

export function encodeEpStatsKey(k: EpStatsKey): Buffer {
  const b = alloc('nf_ep_stats_key');
  w32(b, 0, k.epId);
  b[4] = k.dir;
  b[5] = k.verdict;
  return b;
}

export function decodeEpStatsKey(b: Buffer): EpStatsKey {
  checkSize('nf_ep_stats_key', b);
  return { epId: r32(b, 0), dir: b[4], verdict: b[5] };
}

/** A conntrack flow as first seen: its policy direction and tuple. On the wire the key
 *  holds its two ends in ascending (address bytes, port) order and the value's orig
 *  says which end opened it in which direction (bpf/include/netfence.h). */
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

export const NfCtOrig = { EGRESS: 1 << 0, SRC_HI: 1 << 1 } as const;

/** The wire key and value of flow k with state v. */
export function encodeCt(k: CtKey, v: CtVal): { key: Buffer; value: Buffer } {
  const src = addrToBytes(k.saddr);
  const dst = addrToBytes(k.daddr);
  const byAddr = Buffer.compare(src, dst);
  const srcHi = byAddr > 0 || (byAddr === 0 && k.sport > k.dport);
  const key = alloc('nf_ct_key');
  w32(key, 0, k.epId);
  key[5] = k.proto;
  (srcHi ? dst : src).copy(key, 8);
  (srcHi ? src : dst).copy(key, 24);
  key.writeUInt16BE(srcHi ? k.dport : k.sport, 40);
  key.writeUInt16BE(srcHi ? k.sport : k.dport, 42);
  const value = alloc('nf_ct_val');
  w64(value, 0, v.lastSeenNs);
  w32(value, 8, v.revision);
  w16(value, 12, v.rule);
  value[14] = v.flags;
  value[15] = (k.dir === NfDir.EGRESS ? NfCtOrig.EGRESS : 0) | (srcHi ? NfCtOrig.SRC_HI : 0);
  w64(value, 16, v.expiresNs);
  return { key, value };
}

export function decodeCt(key: Buffer, value: Buffer): { key: CtKey; val: CtVal } {
  checkSize('nf_ct_key', key);
  checkSize('nf_ct_val', value);
  const orig = value[15];
  const srcHi = (orig & NfCtOrig.SRC_HI) !== 0;
  const lo = { addr: bytesToAddr(key.subarray(8, 24)), port: key.readUInt16BE(40) };
  const hi = { addr: bytesToAddr(key.subarray(24, 40)), port: key.readUInt16BE(42) };
  const [src, dst] = srcHi ? [hi, lo] : [lo, hi];
  return {
    key: {
      epId: r32(key, 0),
      dir: orig & NfCtOrig.EGRESS ? NfDir.EGRESS : NfDir.INGRESS,
      proto: key[5],
      saddr: src.addr,
      daddr: dst.addr,
      sport: src.port,
      dport: dst.port,
    },
    val: { lastSeenNs: r64(value, 0), revision: r32(value, 8), rule: r16(value, 12), flags: value[14], expiresNs: r64(value, 16) },
  };
}

export interface Local {
  ifindex: number;
  kind: number;
  /** Local delivery: the pod interface's MAC and its host veth's ("aa:bb:..."); absent = zero. */
  podMac?: string;
  hostMac?: string;
}

const ZERO_MAC = '00:00:00:00:00:00';

function encodeMac(mac: string, b: Buffer, off: number): void {
  const bytes = mac.split(':');
  if (bytes.length !== 6 || bytes.some((x) => !/^[0-9a-fA-F]{2}$/.test(x))) throw new Error(`encode MAC "${mac}": not six hex bytes`);
  bytes.forEach((x, i) => (b[off + i] = parseInt(x, 16)));
}

export function decodeMac(b: Buffer, off: number): string {
  return [...b.subarray(off, off + 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

export function encodeLocal(l: Local): Buffer {
  const b = alloc('nf_local');
  w32(b, 0, l.ifindex);
  w32(b, 4, l.kind);
  encodeMac(l.podMac ?? ZERO_MAC, b, LAYOUT.nf_local.fields.pod_mac);
  encodeMac(l.hostMac ?? ZERO_MAC, b, LAYOUT.nf_local.fields.host_mac);
  return b;
}

export function decodeLocal(b: Buffer): Local {
  checkSize('nf_local', b);
  const l: Local = { ifindex: r32(b, 0), kind: r32(b, 4) };
  const podMac = decodeMac(b, LAYOUT.nf_local.fields.pod_mac);
  const hostMac = decodeMac(b, LAYOUT.nf_local.fields.host_mac);
  return podMac === ZERO_MAC && hostMac === ZERO_MAC ? l : { ...l, podMac, hostMac };
}

export interface Config {
  layoutVersion: number;
  flags: number;
  tunnelMark: number;
  tunnelMarkMask: number;
  uplinkIfindex: number;
  eventsPerSec: number;
  /** Text addresses; undefined = none (zero). */
  gateway6?: string;
  gateway4?: string;
}

export function encodeConfig(c: Config): Buffer {
  const b = alloc('nf_config');
  w32(b, 0, c.layoutVersion);
  w32(b, 4, c.flags);
  w32(b, 8, c.tunnelMark);
  w32(b, 12, c.tunnelMarkMask);
  w32(b, 16, c.uplinkIfindex);
  w32(b, 20, c.eventsPerSec);
  if (c.gateway6 !== undefined) {
    if (isIP(c.gateway6) !== 6) throw new Error(`encode nf_config.gateway6 "${c.gateway6}": not an IPv6 address`);
    parseV6(c.gateway6).copy(b, 24);
  }
  if (c.gateway4 !== undefined) {
    if (isIP(c.gateway4) !== 4) throw new Error(`encode nf_config.gateway4 "${c.gateway4}": not an IPv4 address`);
    parseV4(c.gateway4).copy(b, 40);
  }
  return b;
}

export function decodeConfig(b: Buffer): Config {
  checkSize('nf_config', b);
  const g6 = b.subarray(24, 40);
  const g4 = b.subarray(40, 44);
  return {
    layoutVersion: r32(b, 0),
    flags: r32(b, 4),
    tunnelMark: r32(b, 8),
    tunnelMarkMask: r32(b, 12),
    uplinkIfindex: r32(b, 16),
    eventsPerSec: r32(b, 20),
    gateway6: g6.some((x) => x !== 0) ? bytesToAddr(Buffer.from(g6)) : undefined,
    gateway4: g4.some((x) => x !== 0) ? `${g4[0]}.${g4[1]}.${g4[2]}.${g4[3]}` : undefined,
  };
}

export interface DropEvent {
  tsNs: bigint;
  epId: number;
  ifindex: number;
  table: number;
  policyId: number;
  ruleId: number;
  ruleIndex: number;
  dir: number;
  proto: number;
  reason: number;
  action: number;
  sport: number;
  dport: number;
  saddr: string;
  daddr: string;
}

export function decodeEvent(b: Buffer): DropEvent {
  checkSize('nf_event', b);
  return {
    tsNs: r64(b, 0),
    epId: r32(b, 8),
    ifindex: r32(b, 12),
    table: r32(b, 16),
    policyId: r32(b, 20),
    ruleId: r32(b, 24),
    ruleIndex: r16(b, 28),
    dir: b[30],
    proto: b[31],
    reason: b[32],
    action: b[33],
    sport: b.readUInt16BE(34),
    dport: b.readUInt16BE(36),
    saddr: bytesToAddr(b.subarray(40, 56)),
    daddr: bytesToAddr(b.subarray(56, 72)),
  };
}

export interface RateLimit {
  windowStartNs: bigint;
  count: number;
}

export function encodeRateLimit(r: RateLimit): Buffer {
  const b = alloc('nf_ratelimit');
  w64(b, 0, r.windowStartNs);
  w32(b, 8, r.count);
  return b;
}

export function decodeRateLimit(b: Buffer): RateLimit {
  checkSize('nf_ratelimit', b);
  return { windowStartNs: r64(b, 0), count: r32(b, 8) };
}

/** Lower-case hex of a key (the MapContent key of compile/output.ts). */
export function keyHex(b: Buffer): string {
  return b.toString('hex');
}
