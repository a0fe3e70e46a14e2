// The reconciler's view of the policy maps: a small per-map-name interface, so the
// core runs against the pinned kernel maps (NativeMapIO) or an in-memory double that
// tests fill with injected failures (MemoryMapIO).
import type { MapContent } from '../compile/output';
import type { PolicyMapName } from '../wire/maps';
import { keyHex } from '../wire/bytes';

export interface MapIO {
  keys(map: PolicyMapName): Buffer[];
  lookup(map: PolicyMapName, key: Buffer): Buffer | null;
  update(map: PolicyMapName, key: Buffer, value: Buffer): void;
  /** false when the key was absent. */
  delete(map: PolicyMapName, key: Buffer): boolean;
  /** Whether the map supports batch ops (hash and array maps; not LPM tries). */
  supportsBatch(map: PolicyMapName): boolean;
  updateBatch(map: PolicyMapName, keys: Buffer[], values: Buffer[]): void;
  deleteBatch(map: PolicyMapName, keys: Buffer[]): number;
  /** Zeroes the nf_ep_counters of a counter slot (nf_endpoint.stats_slot) that an
   *  endpoint entry is about to take: its last holder's counts must not become its own. */
  zeroEndpointCounters(slot: number): void;
}

/** An error with an errno name, as the native addon throws them. */
export class MapOpError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'MapOpError';
  }
}

/** Read a map's whole content (keys walk + lookups); keys deleted mid-walk are skipped. */
export function readMap(io: MapIO, map: PolicyMapName): MapContent {
  const out: MapContent = new Map();
  for (const key of io.keys(map)) {
    const value = io.lookup(map, key);
    if (value !== null) out.set(keyHex(key), { key, value });
  }
  return out;
}

/** In-memory maps with a max_entries limit (E2BIG like a full BPF hash map). */
export class MemoryMapIO implements MapIO {
  readonly maps = new Map<PolicyMapName, MapContent>();
  /** The counter slots zeroed, in order. */
  readonly zeroedSlots: number[] = [];

  constructor(
    private readonly maxEntries: Partial<Record<PolicyMapName, number>> = {},
    private readonly batch: ReadonlySet<PolicyMapName> = new Set(),
  ) {}

  private content(map: PolicyMapName): MapContent {
    let m = this.maps.get(map);
    if (!m) {
      m = new Map();
      this.maps.set(map, m);
    }
    return m;
  }

  keys(map: PolicyMapName): Buffer[] {
    return [...this.content(map).values()].map((e) => Buffer.from(e.key));
  }

  lookup(map: PolicyMapName, key: Buffer): Buffer | null {
    const e = this.content(map).get(keyHex(key));
    return e ? Buffer.from(e.value) : null;
  }

  update(map: PolicyMapName, key: Buffer, value: Buffer): void {
    const m = this.content(map);
    const hex = keyHex(key);
    const max = this.maxEntries[map];
    if (!m.has(hex) && max !== undefined && m.size >= max) {
      throw new MapOpError(`update ${map}: map full (max_entries ${max})`, 'E2BIG');
    }
    m.set(hex, { key: Buffer.from(key), value: Buffer.from(value) });
  }

  delete(map: PolicyMapName, key: Buffer): boolean {
    return this.content(map).delete(keyHex(key));
  }

  supportsBatch(map: PolicyMapName): boolean {
    return this.batch.has(map);
  }

  updateBatch(map: PolicyMapName, keys: Buffer[], values: Buffer[]): void {
    keys.forEach((k, i) => this.update(map, k, values[i]));
  }

  deleteBatch(map: PolicyMapName, keys: Buffer[]): number {
    return keys.filter((k) => this.delete(map, k)).length;
  }

  zeroEndpointCounters(slot: number): void {
    this.zeroedSlots.push(slot);
  }
}
