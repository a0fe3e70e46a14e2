// Per-CPU counters: nf_counter values (nf_rule_stats, nf_reason_stats, nf_ep_stats) and
// the nf_ep_stats key. A per-CPU lookup returns one value per possible CPU.
import { r32, r64, w32 } from './bytes';
import { LAYOUT, alloc, checkSize } from './layout';

export interface Counter {
  packets: bigint;
  bytes: bigint;
}

/** Per-CPU value stride: value size rounded up to 8 bytes. */
export function perCpuStride(valueSize: number): number {
  return Math.ceil(valueSize / 8) * 8;
}

const C = LAYOUT.nf_counter.fields;

/** Sum a per-CPU nf_counter lookup result over possibleCpus. */
export function sumPerCpuCounters(b: Buffer, possibleCpus: number): Counter {
  const stride = perCpuStride(LAYOUT.nf_counter.size);
  if (b.length < stride * possibleCpus) {
    throw new Error(`decode per-CPU nf_counter: ${b.length} bytes, need ${stride * possibleCpus}`);
  }
  let packets = 0n;
  let bytes = 0n;
  for (let c = 0; c < possibleCpus; c++) {
    packets += r64(b, c * stride + C.packets);
    bytes += r64(b, c * stride + C.bytes);
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

const K = LAYOUT.nf_ep_stats_key.fields;

export function encodeEpStatsKey(k: EpStatsKey): Buffer {
  const b = alloc('nf_ep_stats_key');
  w32(b, K.ep_id, k.epId);
  b[K.dir] = k.dir;
  b[K.verdict] = k.verdict;
  return b;
}

export function decodeEpStatsKey(b: Buffer): EpStatsKey {
  checkSize('nf_ep_stats_key', b);
  return { epId: r32(b, K.ep_id), dir: b[K.dir], verdict: b[K.verdict] };
}
