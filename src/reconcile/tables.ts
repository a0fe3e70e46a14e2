// A pass's tables as transactions: each changed table's entries are written on their own,
// so a table that does not fit is rolled back and fails only the endpoints that point at
// it. A table is written once per pass, by the first phase or endpoint that needs it; an
// isolation table only when an endpoint falls back to it.
import { MAP_WRITE_ORDER } from './order';
import type { CompileResult, DesiredMaps } from '../compile/output';
import type { PolicyMapName } from '../wire/maps';
import { Journal, addCounts, errText, fullMapOf, type Counts } from './journal';
import type { MapIO } from './mapio';
import { tableOfKey, type ActualMaps, type Entry, type MapDiff } from './plan';

/** The maps written before nf_endpoints (what an entry points at), in write order. */
export const CONTENT_MAPS: readonly PolicyMapName[] = MAP_WRITE_ORDER.filter((m) => m !== 'nf_endpoints');

export type Updates = Partial<Record<PolicyMapName, Entry[]>>;

/** A transaction of this pass, and the table it put in place (if it wrote one). */
export interface Written {
  table?: number;
  journal: Journal;
}

export const hex32 = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;

/** What placing tables reports: the first map found full, entries written. */
export interface TableOutcome {
  fullMap?: PolicyMapName;
  updates: Counts;
}

export class Tables {
  /** Updates of the entries that belong to no table (identities, addresses, service CIDRs). */
  readonly plain: Updates = {};
  private readonly byTable = new Map<number, Updates>();
  /** Tables in place (written this pass, or nothing to write), and why the others are not. */
  private readonly placed = new Set<number>();
  private readonly errors = new Map<number, string>();

  constructor(
    private readonly io: MapIO,
    private readonly actual: ActualMaps,
    diffs: ReadonlyMap<PolicyMapName, MapDiff>,
    /** Tables a compiled endpoint points at; the others are isolation tables. */
    private readonly desired: ReadonlySet<number>,
    private readonly isolation: CompileResult['isolation'] | undefined,
    private readonly out: TableOutcome,
  ) {
    for (const m of CONTENT_MAPS) {
      for (const e of diffs.get(m)!.updates) {
        const t = tableOfKey(m, e.key);
        let bucket = this.plain;
        if (t !== undefined) {
          bucket = this.byTable.get(t) ?? {};
          this.byTable.set(t, bucket);
        }
        (bucket[m] ??= []).push(e);
      }
    }
  }

  /** Tables with entries to write, ascending. */
  changed(): number[] {
    return [...this.byTable.keys()].sort((a, b) => a - b);
  }

  isDesired(t: number): boolean {
    return this.desired.has(t);
  }

  /** Why table `t` could not be placed this pass, if it could not. */
  failure(t: number): string | undefined {
    return this.errors.get(t);
  }

  /** Writes table `t` as its own transaction; returns the error that rolled it back, if
   *  any. Its journal goes to `owner` (undone if the owner fails later). */
  place(t: number, owner: Written[]): string | undefined {
    if (this.placed.has(t)) return undefined;
    const known = this.errors.get(t);
    if (known !== undefined) return known;
    const updates = this.desired.has(t) ? (this.byTable.get(t) ?? {}) : this.isolationUpdates(t);
    const journal = new Journal(this.io, this.actual);
    const counts: Counts = {};
    try {
      for (const m of CONTENT_MAPS) journal.write(m, updates[m] ?? [], counts);
    } catch (e) {
      const error = [`write table ${hex32(t)}: ${errText(e)}`, ...journal.rollback()].join('; ');
      const full = fullMapOf(e);
      if (full) this.out.fullMap ??= full;
      this.errors.set(t, error);
      return error;
    }
    addCounts(this.out.updates, counts);
    this.placed.add(t);
    owner.push({ table: t, journal });
    return undefined;
  }

  /** Undoes what an owner wrote; its tables are no longer in place. */
  undo(owner: Written[]): string[] {
    return owner.reverse().flatMap(({ table, journal }) => {
      if (table !== undefined) this.placed.delete(table);
      return journal.rollback();
    });
  }

  /** An isolation table's entries that the maps lack (it is in no desired table map). */
  private isolationUpdates(t: number): Updates {
    const out: Updates = {};
    for (const [m, content] of Object.entries(this.isolation ?? {}) as [PolicyMapName, DesiredMaps[PolicyMapName]][]) {
      content.forEach((e, hex) => {
        if (tableOfKey(m, e.key) === t && !this.actual[m].get(hex)?.value.equals(e.value)) (out[m] ??= []).push(e);
      });
    }
    return out;
  }
}
