// Per-CPU counters: nf_counter values (nf_rule_stats, nf_reason_stats, nf_ep_counters) and
// the nf_ep_counters key. A per-CPU lookup returns one value per possible CPU.
import { encodeU32, r64 } from './bytes';
import { LAYOUT } from './layout';

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

/** The nf_ep_counters key of an endpoint's counter slot, policy direction (NfDir) and
 *  verdict (NfEpVerdict): NF_EP_COUNTER_INDEX of netfence.h. */
export function epCounterKey(slot: number, dir: number, verdict: number): Buffer {
  return encodeU32(slot * 4 + dir * 2 + verdict);
}
