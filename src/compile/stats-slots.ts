// Counter slots of a node's endpoints (nf_endpoint.stats_slot: their counters in the
// nf_ep_counters array). Derived from the interfaces alone, so a compile needs no memory
// of earlier ones and a restarted agent finds every live endpoint's counters where they
// were: an interface's index modulo the slots, probing upward in index order on a
// collision. A slot moves only when a collision it lost to comes or goes; the reconciler
// zeroes a slot's counters before an entry takes it (src/reconcile/apply.ts).
import { NF_EP_SLOTS } from '../wire/abi';

/** Usable slots: 1..NF_EP_SLOTS-1 (0 = not counted). */
const USABLE = NF_EP_SLOTS - 1;

/** Slot by ifindex for the given interfaces; 0 for those past the last free slot. */
export function statsSlots(ifindexes: Iterable<number>): Map<number, number> {
  const out = new Map<number, number>();
  const taken = new Uint8Array(NF_EP_SLOTS);
  for (const ifindex of [...new Set(ifindexes)].sort((a, b) => a - b)) {
    let slot = 0;
    if (out.size < USABLE) {
      slot = (ifindex % USABLE) + 1;
      while (taken[slot]) slot = (slot % USABLE) + 1;
      taken[slot] = 1;
    }
    out.set(ifindex, slot);
  }
  return out;
}
