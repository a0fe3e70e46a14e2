// MapIO over pinned kernel maps through the native addon.
import type { PolicyMapName } from '../wire/maps';
import type { MapInfo, NativeAddon } from '../datapath/native-api';
import type { MapIO } from './mapio';

// Hash map types have batch update/delete; LPM tries and arrays (no delete) do not.
const BATCH_TYPES = new Set([1 /* HASH */, 5 /* PERCPU_HASH */, 9 /* LRU_HASH */, 10 /* LRU_PERCPU_HASH */]);

export class NativeMapIO implements MapIO {
  constructor(
    private readonly addon: NativeAddon,
    private readonly maps: ReadonlyMap<string, MapInfo>,
  ) {}

  private fd(map: PolicyMapName): number {
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
    this.addon.mapUpdateBatch(this.fd(map), keys, values);
  }
  deleteBatch(map: PolicyMapName, keys: Buffer[]): number {
    return this.addon.mapDeleteBatch(this.fd(map), keys);
  }
}
