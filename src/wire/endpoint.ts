// nf_endpoint: the value of nf_endpoints (key: __u32 ifindex).
import { NF_CHUNK_RULES, NF_MAX_CHUNKS, NfDir } from './abi';
import { r16, r32, w16, w32 } from './bytes';
import { LAYOUT, alloc, checkSize } from './layout';

export interface Endpoint {
  id: number;
  ingressTable: number;
  egressTable: number;
  /** Chunks of each direction's table (chunkCount of its rules; 0 without a table). */
  ingressChunks: number;
  egressChunks: number;
  flags: number;
  revision: number;
  /** Counter slot in nf_ep_counters (src/compile/stats-slots.ts); 0 = not counted. */
  statsSlot: number;
}

/** Chunks a table of `rules` rules spans (0 rules: no table, no chunk). */
export function chunkCount(rules: number): number {
  return Math.ceil(rules / NF_CHUNK_RULES);
}

const F = LAYOUT.nf_endpoint.fields;
/** table[dir] and chunks[dir] are arrays indexed by enum nf_dir. */
const TABLE = { ingress: F.table + 4 * NfDir.INGRESS, egress: F.table + 4 * NfDir.EGRESS };
const CHUNKS = { ingress: F.chunks + NfDir.INGRESS, egress: F.chunks + NfDir.EGRESS };

function checkChunks(e: Endpoint): void {
  for (const [field, n] of [
    ['ingressChunks', e.ingressChunks],
    ['egressChunks', e.egressChunks],
  ] as const) {
    if (!Number.isInteger(n) || n < 0 || n > NF_MAX_CHUNKS)
      throw new Error(`encode nf_endpoint.${field}: ${n} out of range 0..${NF_MAX_CHUNKS}`);
  }
}

export function encodeEndpoint(e: Endpoint): Buffer {
  checkChunks(e);
  const b = alloc('nf_endpoint');
  w32(b, F.id, e.id);
  w32(b, TABLE.ingress, e.ingressTable);
  w32(b, TABLE.egress, e.egressTable);
  w32(b, F.flags, e.flags);
  w32(b, F.revision, e.revision);
  b[CHUNKS.ingress] = e.ingressChunks;
  b[CHUNKS.egress] = e.egressChunks;
  w16(b, F.stats_slot, e.statsSlot);
  return b;
}

export function decodeEndpoint(b: Buffer): Endpoint {
  checkSize('nf_endpoint', b);
  return {
    id: r32(b, F.id),
    ingressTable: r32(b, TABLE.ingress),
    egressTable: r32(b, TABLE.egress),
    ingressChunks: b[CHUNKS.ingress],
    egressChunks: b[CHUNKS.egress],
    flags: r32(b, F.flags),
    revision: r32(b, F.revision),
    statsSlot: r16(b, F.stats_slot),
  };
}
