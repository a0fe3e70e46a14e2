// The keys and values of a policy table: nf_peer_ident_key, nf_cidr_key, nf_port_key
// (their table field carries the chunk), nf_rule_key and nf_rule. LPM key fields after
// prefixlen are big-endian; the rest is host order.
import { toCidr, type Cidr } from '../model/ip';
import { NF_CHUNK_SHIFT, NF_MAX_CHUNKS, NF_TABLE_MASK } from './abi';
import { mappedPrefix, unmappedCidr } from './addr';
import { r16, r32, w16, w32 } from './bytes';
import { ADDR_BYTES, LAYOUT, alloc, checkSize } from './layout';

/** Bits of the table field that LPM keys match before their payload. */
const TABLE_BITS = 32;
/** ... and of the protocol that nf_port_key matches next. */
const PROTO_BITS = 8;
const PORT_BITS = 16;

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

const PI = LAYOUT.nf_peer_ident_key.fields;

export function encodePeerIdentKey(table: number, identity: number, chunk = 0): Buffer {
  const b = alloc('nf_peer_ident_key');
  w32(b, PI.table, chunkKeyTable(table, chunk));
  w32(b, PI.identity, identity);
  return b;
}

export function decodePeerIdentKey(b: Buffer): { table: number; chunk: number; identity: number } {
  checkSize('nf_peer_ident_key', b);
  return { ...splitKeyTable(r32(b, PI.table)), identity: r32(b, PI.identity) };
}

const CK = LAYOUT.nf_cidr_key.fields;

/** nf_peer_cidr key: table chunk + CIDR (prefix length in the family's terms). */
export function encodeCidrKey(table: number, cidr: string, chunk = 0): Buffer {
  const p = mappedPrefix(toCidr(cidr));
  const b = alloc('nf_cidr_key');
  w32(b, CK.prefixlen, TABLE_BITS + p.bits);
  b.writeUInt32BE(chunkKeyTable(table, chunk), CK.table);
  p.addr.copy(b, CK.addr);
  return b;
}

export function decodeCidrKey(b: Buffer): { table: number; chunk: number; cidr: Cidr } {
  checkSize('nf_cidr_key', b);
  const cidr = unmappedCidr({
    addr: b.subarray(CK.addr, CK.addr + ADDR_BYTES),
    bits: r32(b, CK.prefixlen) - TABLE_BITS,
  });
  return { ...splitKeyTable(b.readUInt32BE(CK.table)), cidr };
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

const PK = LAYOUT.nf_port_key.fields;

export function encodePortKey(k: PortKey): Buffer {
  const b = alloc('nf_port_key');
  b.writeUInt32BE(chunkKeyTable(k.table, k.chunk ?? 0), PK.table);
  if (k.proto === undefined) {
    w32(b, PK.prefixlen, TABLE_BITS);
    return b;
  }
  const bits = k.portBits ?? (k.port === undefined ? 0 : PORT_BITS);
  if (!Number.isInteger(bits) || bits < 0 || bits > PORT_BITS) {
    throw new Error(`encode port key: port prefix length ${bits} out of range 0..${PORT_BITS}`);
  }
  const port = k.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
    throw new Error(`encode port key: port ${port} out of range 0..65535`);
  }
  const mask = bits === 0 ? 0 : (0xffff << (PORT_BITS - bits)) & 0xffff;
  w32(b, PK.prefixlen, TABLE_BITS + PROTO_BITS + bits);
  b[PK.proto] = k.proto;
  b.writeUInt16BE(port & mask, PK.port);
  return b;
}

export function decodePortKey(b: Buffer): PortKey & { chunk: number } {
  checkSize('nf_port_key', b);
  const bits = r32(b, PK.prefixlen);
  const t = splitKeyTable(b.readUInt32BE(PK.table));
  if (bits < TABLE_BITS + PROTO_BITS) return t;
  return { ...t, proto: b[PK.proto], port: b.readUInt16BE(PK.port), portBits: bits - TABLE_BITS - PROTO_BITS };
}

const RK = LAYOUT.nf_rule_key.fields;

export function encodeRuleKey(table: number, index: number): Buffer {
  const b = alloc('nf_rule_key');
  w32(b, RK.table, table);
  w32(b, RK.index, index);
  return b;
}

export function decodeRuleKey(b: Buffer): { table: number; index: number } {
  checkSize('nf_rule_key', b);
  return { table: r32(b, RK.table), index: r32(b, RK.index) };
}

export interface RuleValue {
  action: number;
  tier: number;
  tierEnd: number;
  policyId: number;
  ruleId: number;
}

const R = LAYOUT.nf_rule.fields;

export function encodeRule(r: RuleValue): Buffer {
  const b = alloc('nf_rule');
  b[R.action] = r.action;
  b[R.tier] = r.tier;
  w16(b, R.tier_end, r.tierEnd);
  w32(b, R.policy_id, r.policyId);
  w32(b, R.rule_id, r.ruleId);
  return b;
}

export function decodeRule(b: Buffer): RuleValue {
  checkSize('nf_rule', b);
  return {
    action: b[R.action],
    tier: b[R.tier],
    tierEnd: r16(b, R.tier_end),
    policyId: r32(b, R.policy_id),
    ruleId: r32(b, R.rule_id),
  };
}
