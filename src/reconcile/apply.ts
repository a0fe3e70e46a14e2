// Applies a desired map state transactionally:
//  1. tables of already-enforced endpoints, each table its own transaction (a table that
//     does not fit is rolled back and fails only the endpoints that point at it), then
//     the other shared entries (identities, local addresses, service CIDRs) all or
//     nothing: a failure there undoes the whole phase, so the previous state stays;
//  2. each new endpoint (or one that needs a hook it lacks) on its own: its exclusive
//     tables, then the tc programs its hooks need (src/datapath/hooks.ts), then its
//     nf_endpoints entry; a failure rolls back that endpoint only;
//  3. changed entries of endpoints that are already enforced (one atomic write each);
//  4. deletes in reverse MAP_WRITE_ORDER, keeping every table an endpoint still points at;
//     programs leave the hooks that no longer need them once the entries say so.
// Fail closed: a direction whose table cannot be enforced (refused by the compiler, or
// its table did not fit) keeps the endpoint's last enforced table there, or, without one,
// gets the endpoint's isolation table, or, when that does not fit either, NF_TABLE_DENY
// (deny all, no map entries); it is never left without a table. Since a new
// table is written before the old one is deleted, replacing a table needs room for both.
// The current content is read from the maps unless the caller knows it (Reconciler).
import { endpointRevision } from '../compile/hash';
import { MAP_WRITE_ORDER, type CompileResult, type CompiledEndpoint, type DesiredMaps, type PolicyMapName } from '../compile/output';
import { NF_TABLE_DENY, decodeEndpoint, encodeEndpoint, encodeU32, keyHex, type Endpoint } from '../datapath/codecs';
import { TC_DIRECTIONS as DIRS, hooksFor } from '../datapath/hooks';
import type { TcDirection } from '../datapath/native-api';
import { readMap, type MapIO } from './mapio';
import { diffMap, emptyMaps, tableOfKey, type ActualMaps, type Entry, type MapDiff } from './plan';

export interface EndpointRef {
  ifindex: number;
  ifname: string;
}

/** tc program attachment per interface and hook (src/datapath/attach.ts in the agent). */
export interface Attacher {
  attached(ep: EndpointRef, dir: TcDirection): boolean;
  attach(ep: EndpointRef, dir: TcDirection): void;
  detach(ep: EndpointRef, dir: TcDirection): void;
  /** Every interface netfence has programs on (to detach stale ones). */
  list(): EndpointRef[];
}

type Direction = 'ingress' | 'egress';
const DIRECTIONS: readonly Direction[] = ['ingress', 'egress'];

/** What enforces a direction whose own table could not be: its last enforced table, or
 *  the isolation table (deny all but the privileged rules), or when even that does not
 *  fit, NF_TABLE_DENY (deny all). */
export type Fallback = 'kept' | 'isolated';

export interface EndpointFailure {
  ifname: string;
  ifindex: number;
  pod?: string;
  error: string;
  /** Set when the endpoint is enforced, but not with its desired tables: per direction
   *  that fell back, what it runs. Absent: nothing of this pass was applied to it (a new
   *  endpoint then has no programs; an enforced one keeps its whole previous entry). */
  fallback?: Partial<Record<Direction, Fallback>>;
}

export interface ReconcileOptions {
  /** The maps' current content, when the caller knows it (else they are read). */
  known?: ActualMaps;
  /** The isolation tables' entries (CompileResult.isolation): written only when an
   *  endpoint falls back to one. */
  isolation?: CompileResult['isolation'];
}

export interface ReconcileReport {
  /** false: the shared phase failed and was undone; the previous state stays enforced. */
  ok: boolean;
  error?: string;
  /** Map named by a map-full error (E2BIG/ENOSPC), if any. */
  fullMap?: PolicyMapName;
  programmed: string[];
  /** Interfaces whose programs left every hook ("veth5"), or one hook ("veth5/ingress"). */
  detached: string[];
  failed: EndpointFailure[];
  updates: Partial<Record<PolicyMapName, number>>;
  deletes: Partial<Record<PolicyMapName, number>>;
  /** nf_rules keys this pass deleted whose table no endpoint uses any more: the table is
   *  retired, and its counters in nf_rule_stats can go (src/reconcile/rule-stats.ts). */
  retiredRuleKeys: Buffer[];
  /** Whether this pass read the maps (rather than being told their content). */
  read: boolean;
  /** The maps now hold exactly the desired content: nothing failed, rolled back or was
   *  left in place, so a next pass may diff against it without reading the maps. */
  exact: boolean;
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

function errCode(e: unknown): string {
  return typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string'
    ? (e as { code: string }).code
    : '';
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Undo log: the previous value (or absence) of every key written. */
class Journal {
  private readonly undo: { map: PolicyMapName; key: Buffer; prev: Buffer | null }[] = [];
  constructor(
    private readonly io: MapIO,
    private readonly actual: ActualMaps,
  ) {}

  /** Write entries (batched where the map supports it); throws MapWriteError. */
  write(map: PolicyMapName, entries: Entry[], counts: ReconcileReport['updates']): void {
    if (entries.length === 0) return;
    for (const e of entries) this.undo.push({ map, key: e.key, prev: this.actual[map].get(keyHex(e.key))?.value ?? null });
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

export function readActual(io: MapIO): ActualMaps {
  const actual = emptyMaps();
  for (const m of MAP_WRITE_ORDER) actual[m] = readMap(io, m);
  return actual;
}

function endpointTables(value: Buffer): number[] {
  const ep = decodeEndpoint(value);
  return [ep.ingressTable, ep.egressTable].filter((t) => t !== 0);
}

const tableOf = (ep: Pick<Endpoint, 'ingressTable' | 'egressTable'>, d: Direction): number => (d === 'ingress' ? ep.ingressTable : ep.egressTable);
const chunksOf = (ep: Pick<Endpoint, 'ingressChunks' | 'egressChunks'>, d: Direction): number => (d === 'ingress' ? ep.ingressChunks : ep.egressChunks);
const hex32 = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;

type TableUpdates = Partial<Record<PolicyMapName, Entry[]>>;
/** A transaction of this pass, and the table it put in place (if it wrote one). */
interface Written {
  table?: number;
  journal: Journal;
}

/** An endpoint's entry as this pass leaves it: its desired tables where they are in place,
 *  elsewhere what it falls back to. */
interface Resolution {
  value: Buffer;
  fallback: Partial<Record<Direction, Fallback>>;
  /** Why each fallen-back direction could not get its table, with what it runs instead. */
  problems: string[];
}

export function reconcile(
  io: MapIO,
  attacher: Attacher,
  desired: DesiredMaps,
  endpoints: readonly CompiledEndpoint[],
  opts: ReconcileOptions = {},
): ReconcileReport {
  const report: ReconcileReport = { ok: true, programmed: [], detached: [], failed: [], updates: {}, deletes: {}, retiredRuleKeys: [], read: !opts.known, exact: false };
  const actual = opts.known ?? readActual(io);
  const diffs = new Map<PolicyMapName, MapDiff>(
    MAP_WRITE_ORDER.map((m) => [m, diffMap(m, desired[m] ?? new Map(), actual[m])]),
  );
  const epKey = (ep: EndpointRef): string => keyHex(encodeU32(ep.ifindex));
  const addCounts = (counts: ReconcileReport['updates']): void => {
    for (const [m, n] of Object.entries(counts)) report.updates[m as PolicyMapName] = (report.updates[m as PolicyMapName] ?? 0) + n;
  };

  // The hooks each endpoint's desired entry needs (both when it has none: the pass fails it below).
  const needs = (ep: CompiledEndpoint): readonly TcDirection[] => {
    const entry = desired.nf_endpoints.get(epKey(ep));
    return entry ? hooksFor(decodeEndpoint(entry.value)) : DIRS;
  };
  // An endpoint is new unless its entry is in place and every hook it needs carries our program.
  const isNew = (ep: CompiledEndpoint): boolean =>
    !actual.nf_endpoints.has(epKey(ep)) || needs(ep).some((d) => !attacher.attached(ep, d));
  const sorted = [...endpoints].sort((a, b) => a.ifindex - b.ifindex);
  const fresh = sorted.filter(isNew);
  const freshKeys = new Set(fresh.map(epKey));

  // Tables some already-enforced endpoint points at (now or after this run) are shared.
  const sharedTables = new Set<number>();
  for (const { value } of actual.nf_endpoints.values()) endpointTables(value).forEach((t) => sharedTables.add(t));
  for (const ep of sorted) {
    if (!freshKeys.has(epKey(ep))) [ep.ingressTable, ep.egressTable].forEach((t) => sharedTables.add(t));
  }
  const desiredTables = new Set(sorted.flatMap((ep) => [ep.ingressTable, ep.egressTable]));
  const tableMaps = MAP_WRITE_ORDER.filter((m) => m !== 'nf_endpoints');
  // Updates per table, and the entries of no table (identities, addresses, service CIDRs).
  const tableUpdates = new Map<number, TableUpdates>();
  const plain: TableUpdates = {};
  for (const m of tableMaps) {
    for (const e of diffs.get(m)!.updates) {
      const t = tableOfKey(m, e.key);
      let bucket = plain;
      if (t !== undefined) {
        bucket = tableUpdates.get(t) ?? {};
        tableUpdates.set(t, bucket);
      }
      (bucket[m] ??= []).push(e);
    }
  }
  /** An isolation table's entries that the maps lack (it is in no desired table map). */
  const isolationUpdates = (t: number): TableUpdates => {
    const out: TableUpdates = {};
    for (const [m, content] of Object.entries(opts.isolation ?? {}) as [PolicyMapName, DesiredMaps[PolicyMapName]][]) {
      content.forEach((e, hex) => {
        if (tableOfKey(m, e.key) === t && !actual[m].get(hex)?.value.equals(e.value)) (out[m] ??= []).push(e);
      });
    }
    return out;
  };

  // Tables in place (written this pass, or nothing to write), and why the others are not.
  const placed = new Set<number>();
  const tableErrors = new Map<number, string>();
  /** Writes table `t` as its own transaction; returns the error that rolled it back, if
   *  any. Its journal goes to `owner` (undone if the owner fails later). */
  const placeTable = (t: number, owner: Written[]): string | undefined => {
    if (placed.has(t)) return undefined;
    const known = tableErrors.get(t);
    if (known !== undefined) return known;
    const updates = desiredTables.has(t) ? (tableUpdates.get(t) ?? {}) : isolationUpdates(t);
    const journal = new Journal(io, actual);
    const counts: ReconcileReport['updates'] = {};
    try {
      for (const m of tableMaps) journal.write(m, updates[m] ?? [], counts);
    } catch (e) {
      const error = [`write table ${hex32(t)}: ${errText(e)}`, ...journal.rollback()].join('; ');
      if (e instanceof MapWriteError && e.full) report.fullMap ??= e.map;
      tableErrors.set(t, error);
      return error;
    }
    addCounts(counts);
    placed.add(t);
    owner.push({ table: t, journal });
    return undefined;
  };
  /** Undoes what an owner wrote; its tables are no longer in place. */
  const undo = (owner: Written[]): string[] =>
    owner.reverse().flatMap(({ table, journal }) => {
      if (table !== undefined) placed.delete(table);
      return journal.rollback();
    });

  // Phase 1: shared tables one by one, then the other shared entries all or nothing.
  const sharedJournals: Written[] = [];
  for (const t of [...tableUpdates.keys()].sort((a, b) => a - b)) {
    if (sharedTables.has(t) || !desiredTables.has(t)) placeTable(t, sharedJournals);
  }
  const shared = new Journal(io, actual);
  const sharedCounts: ReconcileReport['updates'] = {};
  try {
    for (const m of tableMaps) shared.write(m, plain[m] ?? [], sharedCounts);
  } catch (e) {
    const problems = [...shared.rollback(), ...undo(sharedJournals)];
    report.ok = false;
    report.error = [errText(e), ...problems].join('; ');
    if (e instanceof MapWriteError && e.full) report.fullMap = e.map;
    report.updates = {};
    return report;
  }
  addCounts(sharedCounts);

  /** The entry `ep` gets: its desired tables where they are in place; elsewhere its last
   *  enforced table (the same endpoint's), else its isolation table, else NF_TABLE_DENY.
   *  Exclusive tables' journals go to `owner`. */
  const resolve = (ep: CompiledEndpoint, want: Endpoint, owner: Written[]): Resolution => {
    const old = actual.nf_endpoints.get(epKey(ep));
    const last = old && decodeEndpoint(old.value).id === want.id ? decodeEndpoint(old.value) : undefined;
    const tables = { ingress: want.ingressTable, egress: want.egressTable };
    // A fallback table's own chunk count: the program walks exactly that many chunks.
    const chunks = { ingress: want.ingressChunks, egress: want.egressChunks };
    const fallback: Resolution['fallback'] = {};
    const problems: string[] = [];
    for (const d of DIRECTIONS) {
      const t = tables[d];
      if (t === 0) continue;
      const problem = ep.refused?.directions.includes(d) ? ep.refused.error : placeTable(t, owner);
      if (problem === undefined) continue;
      const isolation = ep.isolationTables?.[d] ?? 0;
      const kept = last ? tableOf(last, d) : 0;
      // A last resort is never kept: the isolation table may fit now.
      if (last && kept !== 0 && kept !== isolation && kept !== NF_TABLE_DENY) {
        tables[d] = kept;
        chunks[d] = chunksOf(last, d);
        fallback[d] = 'kept';
        problems.push(`${d}: ${problem}; keeps its last enforced table ${hex32(kept)} (a new table is written before the old one goes: both must fit)`);
        continue;
      }
      const isolationProblem = isolation === 0 ? 'no isolation table' : placeTable(isolation, []);
      fallback[d] = 'isolated';
      if (isolationProblem === undefined) {
        tables[d] = isolation;
        chunks[d] = ep.isolationChunks?.[d] ?? 1;
        problems.push(`${d}: ${problem}; isolated (denies all but the privileged rules)`);
        continue;
      }
      // The last resort needs no map entry: the program denies that table id outright.
      tables[d] = NF_TABLE_DENY;
      chunks[d] = 1;
      problems.push(`${d}: ${problem}; its isolation table did not fit either (${isolationProblem}): denies everything, privileged rules included`);
    }
    if (problems.length === 0) return { value: encodeEndpoint(want), fallback, problems };
    // The revision of the tables it really has: unchanged while they are its last ones
    // (its flows stay established), a new one otherwise (they are evaluated again).
    const same = last !== undefined && last.ingressTable === tables.ingress && last.egressTable === tables.egress;
    const revision = same ? last.revision : endpointRevision(tables.ingress, tables.egress);
    return { value: encodeEndpoint({
      ...want,
      ingressTable: tables.ingress,
      egressTable: tables.egress,
      ingressChunks: chunks.ingress,
      egressChunks: chunks.egress,
      revision,
    }), fallback, problems };
  };
  /** Entries this pass wrote, by endpoint key. */
  const written = new Map<string, Buffer>();
  const failedKeys = new Set<string>();
  const fellBack = (ep: CompiledEndpoint, r: Resolution): void => {
    if (r.problems.length === 0) return;
    report.failed.push({ ifname: ep.ifname, ifindex: ep.ifindex, pod: ep.pod, error: `endpoint ${ep.ifname}${ep.pod ? ` (${ep.pod})` : ''} ${r.problems.join('; ')}`, fallback: r.fallback });
  };

  // Phase 2: new endpoints, one transaction each.
  for (const ep of fresh) {
    const journals: Written[] = [];
    const attachedNow: TcDirection[] = [];
    const counts: ReconcileReport['updates'] = {};
    try {
      const entry = desired.nf_endpoints.get(epKey(ep));
      if (!entry) throw new Error(`no nf_endpoints entry in the compiled maps`);
      const r = resolve(ep, decodeEndpoint(entry.value), journals);
      for (const d of hooksFor(decodeEndpoint(r.value))) {
        if (attacher.attached(ep, d)) continue;
        attacher.attach(ep, d);
        attachedNow.push(d);
      }
      const journal = new Journal(io, actual);
      journals.push({ journal });
      journal.write('nf_endpoints', [{ key: encodeU32(ep.ifindex), value: r.value }], counts);
      addCounts(counts);
      written.set(epKey(ep), r.value);
      report.programmed.push(ep.ifname);
      fellBack(ep, r);
    } catch (e) {
      const problems: string[] = [];
      for (const d of attachedNow.reverse()) {
        try {
          attacher.detach(ep, d);
        } catch (de) {
          problems.push(`detach ${ep.ifname} ${d}: ${errText(de)}`);
        }
      }
      // Its exclusive tables go again (a later endpoint of the same table writes it anew).
      problems.push(...undo(journals));
      failedKeys.add(epKey(ep));
      if (e instanceof MapWriteError && e.full) report.fullMap ??= e.map;
      report.failed.push({
        ifname: ep.ifname,
        ifindex: ep.ifindex,
        pod: ep.pod,
        error: [`program endpoint ${ep.ifname}: ${errText(e)}`, ...problems].join('; '),
      });
    }
  }

  // Phase 3: switch already-enforced endpoints to their new tables (or fallbacks). One
  // whose entry is unchanged and whose tables are in place has nothing to do.
  const changed = new Set(diffs.get('nf_endpoints')!.updates.map((e) => keyHex(e.key)));
  for (const ep of sorted) {
    const key = epKey(ep);
    const entry = desired.nf_endpoints.get(key);
    if (freshKeys.has(key) || !entry) continue;
    if (!changed.has(key) && !ep.refused && !tableErrors.has(ep.ingressTable) && !tableErrors.has(ep.egressTable)) continue;
    try {
      const r = resolve(ep, decodeEndpoint(entry.value), []);
      if (!actual.nf_endpoints.get(key)!.value.equals(r.value)) {
        io.update('nf_endpoints', encodeU32(ep.ifindex), r.value);
        report.updates.nf_endpoints = (report.updates.nf_endpoints ?? 0) + 1;
        written.set(key, r.value);
      }
      fellBack(ep, r);
    } catch (e) {
      failedKeys.add(key);
      report.failed.push({ ifname: ep.ifname, ifindex: ep.ifindex, pod: ep.pod, error: `update endpoint ${ep.ifname}: ${errText(e)}` });
    }
  }

  // Phase 4: deletes. Tables still referenced by the final endpoint entries stay.
  const finalEndpoints = new Map<string, Buffer>();
  for (const [hex, { value }] of actual.nf_endpoints) finalEndpoints.set(hex, value);
  for (const [hex, value] of written) finalEndpoints.set(hex, value);
  for (const hex of diffs.get('nf_endpoints')!.deletes.map(keyHex)) finalEndpoints.delete(hex);
  const keep = new Set<number>();
  for (const v of finalEndpoints.values()) endpointTables(v).forEach((t) => keep.add(t));

  const deleteErrors: string[] = [];
  const del = (m: PolicyMapName, keys: Buffer[]): boolean => {
    if (keys.length === 0) return true;
    try {
      const n = keys.length > 1 && io.supportsBatch(m) ? io.deleteBatch(m, keys) : keys.filter((k) => io.delete(m, k)).length;
      report.deletes[m] = (report.deletes[m] ?? 0) + n;
      return true;
    } catch (e) {
      deleteErrors.push(`delete from ${m}: ${errText(e)}`);
      return false;
    }
  };
  del('nf_endpoints', diffs.get('nf_endpoints')!.deletes);

  const detach = (ref: EndpointRef, d: TcDirection): boolean => {
    try {
      attacher.detach(ref, d);
      return true;
    } catch (e) {
      deleteErrors.push(`detach ${ref.ifname} ${d}: ${errText(e)}`);
      return false;
    }
  };
  // An endpoint's hooks follow its final entry; one that failed keeps its old entry and hooks.
  const kept = sorted.filter((ep) => finalEndpoints.has(epKey(ep)));
  for (const ep of kept) {
    if (failedKeys.has(epKey(ep))) continue;
    const needed = hooksFor(decodeEndpoint(finalEndpoints.get(epKey(ep))!));
    for (const d of DIRS) {
      if (!needed.includes(d) && attacher.attached(ep, d) && detach(ep, d)) report.detached.push(`${ep.ifname}/${d}`);
    }
  }
  const wanted = new Set(kept.map((ep) => ep.ifname));
  for (const ref of attacher.list()) {
    if (wanted.has(ref.ifname)) continue;
    for (const d of DIRS) detach(ref, d);
    report.detached.push(ref.ifname);
  }

  let withheld = 0;
  for (const m of [...tableMaps].reverse()) {
    const deletes = diffs.get(m)!.deletes;
    const allowed = deletes.filter((k) => {
      const t = tableOfKey(m, k);
      return t === undefined || !keep.has(t);
    });
    withheld += deletes.length - allowed.length;
    if (del(m, allowed) && m === 'nf_rules') report.retiredRuleKeys = allowed;
  }
  if (deleteErrors.length > 0) report.error = deleteErrors.join('; ');
  report.failed.sort((a, b) => a.ifindex - b.ifindex);
  report.exact = report.failed.length === 0 && deleteErrors.length === 0 && withheld === 0;
  return report;
}
