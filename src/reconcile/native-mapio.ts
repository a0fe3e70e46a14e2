// MapIO over pinned kernel maps through the native addon.
import type { PolicyMapName } from '../wire/maps';
import type { MapInfo, NativeAddon } from '../datapath/native-api';
import { NfDir, NfEpVerdict } from '../wire/abi';
import { epCounterKey, zeroPerCpuCounters } from '../wire/counters';
import type { MapIO } from './mapio';

// Hash map types have batch update/delete; LPM tries and arrays (no delete) do not.
const BATCH_TYPES = new Set([1 /* HASH */, 5 /* PERCPU_HASH */, 9 /* LRU_HASH */, 10 /* LRU_PERCPU_HASH */]);

export class NativeMapIO implements MapIO {
  constructor(
    private readonly addon: NativeAddon,
    private readonly maps: ReadonlyMap<string, MapInfo>,
  ) {}

  private fd(map: PolicyMapName | 'nf_ep_counters'): number {
    const info = this.maps.get(map);
    if (!info) throw new Error(`open map ${map}: not in the loaded object`);
    return info.fd;
  }

  keys(map: PolicyMapName): Buffer[] {
    return this.addon.mapKeys(this.fd(map));
  }
  lookup(map: PolicyMapName, key: Buffer): Buffer | null {
    return this.addon.mapLookup(this.fd(map), key);
  }
  update(map: PolicyMapName, key: Buffer, value: Buffer): void {
    this.addon.mapUpdate(this.fd(map), key, value);
  }
  delete(map: PolicyMapName, key: Buffer): boolean {
    return this.addon.mapDelete(this.fd(map), key);
  }
  supportsBatch(map: PolicyMapName): boolean {
    return BATCH_TYPES.has(this.maps.get(map)?.type ?? -1);
  }
  updateBatch(map: PolicyMapName, keys: Buffer[], values: Buffer[]): void {
    // (Per-CPU values are larger than valueSize: passed as arrays.)
    const info = this.maps.get(map);
    this.addon.mapUpdateBatch(this.fd(map), packed(keys, info?.keySize), packed(values, info?.valueSize));
  }
  deleteBatch(map: PolicyMapName, keys: Buffer[]): number {
    return this.addon.mapDeleteBatch(this.fd(map), packed(keys, this.maps.get(map)?.keySize));
  }
  zeroEndpointCounters(slot: number): void {
    const fd = this.fd('nf_ep_counters');
    const zero = zeroPerCpuCounters(this.addon.possibleCpus());
    for (const dir of [NfDir.INGRESS, NfDir.EGRESS])
      for (const verdict of [NfEpVerdict.ALLOWED, NfEpVerdict.DENIED])
        this.addon.mapUpdate(fd, epCounterKey(slot, dir, verdict), zero);
  }
}

/** The elements back to back when every one is `size` bytes (the addon then reads one
 *  argument, not one per entry: a third of a 100k-entry batch); else the array, whose
 *  elements the addon checks one by one and names the wrong one. */
function packed(items: Buffer[], size: number | undefined): Buffer[] | Buffer {
  if (size === undefined || items.length < 2) return items;
  for (const b of items) if (b.length !== size) return items;
  return Buffer.concat(items, items.length * size);
}
