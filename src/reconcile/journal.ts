// Map writes that can be undone: every transaction of a reconcile pass (a table, the
// shared entries, an endpoint) writes through a Journal, which remembers each key's
// previous value (or absence) and restores them all on rollback.
import type { PolicyMapName } from '../wire/maps';
import { keyHex } from '../wire/bytes';
import type { MapIO } from './mapio';
import type { ActualMaps, Entry } from './plan';

/** Entries written (or deleted) per map. */
export type Counts = Partial<Record<PolicyMapName, number>>;

export function addCounts(into: Counts, from: Counts): void {
  for (const [m, n] of Object.entries(from)) into[m as PolicyMapName] = (into[m as PolicyMapName] ?? 0) + n;
}

const MAP_FULL_CODES = new Set(['E2BIG', 'ENOSPC']);

/** A failed map write, named by map: "update nf_rules: map full (E2BIG): ..." */
export class MapWriteError extends Error {
  constructor(
    readonly map: PolicyMapName,
    readonly code: string,
    cause: string,
  ) {
    super(`update ${map}: ${MAP_FULL_CODES.has(code) ? 'map full' : 'write failed'} (${code || 'error'}): ${cause}`);
    this.name = 'MapWriteError';
  }
  get full(): boolean {
    return MAP_FULL_CODES.has(this.code);
  }
}

/** The map a map-full error names, if `e` is one. */
export function fullMapOf(e: unknown): PolicyMapName | undefined {
  return e instanceof MapWriteError && e.full ? e.map : undefined;
}

function errCode(e: unknown): string {
  return typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string'
    ? (e as { code: string }).code
    : '';
}

export function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Undo log: the previous value (or absence) of every key written. */
export class Journal {
  private readonly undo: { map: PolicyMapName; key: Buffer; prev: Buffer | null }[] = [];
  constructor(
    private readonly io: MapIO,
    private readonly actual: ActualMaps,
  ) {}

  /** Write entries (batched where the map supports it); throws MapWriteError. */
  write(map: PolicyMapName, entries: Entry[], counts: Counts): void {
    if (entries.length === 0) return;
    for (const e of entries)
      this.undo.push({ map, key: e.key, prev: this.actual[map].get(e.hex ?? keyHex(e.key))?.value ?? null });
    try {
      if (entries.length > 1 && this.io.supportsBatch(map)) {
        this.io.updateBatch(
          map,
          entries.map((e) => e.key),
          entries.map((e) => e.value),
        );
      } else {
        for (const e of entries) this.io.update(map, e.key, e.value);
      }
    } catch (e) {
      throw new MapWriteError(map, errCode(e), errText(e));
    }
    counts[map] = (counts[map] ?? 0) + entries.length;
  }

  /** Restore every key written, newest first; best effort (a restore of a previous value cannot overflow). */
  rollback(): string[] {
    const problems: string[] = [];
    for (const u of this.undo.reverse()) {
      try {
        if (u.prev) this.io.update(u.map, u.key, u.prev);
        else this.io.delete(u.map, u.key);
      } catch (e) {
        problems.push(`roll back ${u.map} ${keyHex(u.key)}: ${errText(e)}`);
      }
    }
    this.undo.length = 0;
    return problems;
  }
}
