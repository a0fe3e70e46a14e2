// Applies a desired map state transactionally:
//  1. shared entries (tables of already-enforced endpoints, identities, local
//     addresses, service CIDRs) in MAP_WRITE_ORDER; any failure undoes the whole
//     phase, so the previous state stays enforced;
//  2. each new endpoint (or one that needs a hook it lacks) on its own: its exclusive
//     table entries, then the tc programs its hooks need (src/datapath/hooks.ts), then
//     its nf_endpoints entry; a failure rolls back that endpoint only;
//  3. changed entries of endpoints that are already enforced (one atomic write each);
//  4. deletes in reverse MAP_WRITE_ORDER, keeping every table an endpoint still points at;
//     programs leave the hooks that no longer need them once the entries say so.
// The current content is read from the maps unless the caller knows it (Reconciler).
import { MAP_WRITE_ORDER, type CompiledEndpoint, type DesiredMaps, type PolicyMapName } from '../compile/output';
import { decodeEndpoint, encodeU32, keyHex } from '../datapath/codecs';
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

export interface EndpointFailure {
  ifname: string;
  ifindex: number;
  pod?: string;
  error: string;
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

export function reconcile(
  io: MapIO,
  attacher: Attacher,
  desired: DesiredMaps,
  endpoints: readonly CompiledEndpoint[],
  known?: ActualMaps,
): ReconcileReport {
  const report: ReconcileReport = { ok: true, programmed: [], detached: [], failed: [], updates: {}, deletes: {}, retiredRuleKeys: [], read: !known, exact: false };
  const actual = known ?? readActual(io);
  const diffs = new Map<PolicyMapName, MapDiff>(
    MAP_WRITE_ORDER.map((m) => [m, diffMap(m, desired[m] ?? new Map(), actual[m])]),
  );
  const epKey = (ep: EndpointRef): string => keyHex(encodeU32(ep.ifindex));

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
  const freshTables = new Set<number>();
  for (const ep of fresh) {
    for (const t of [ep.ingressTable, ep.egressTable]) if (t !== 0 && !sharedTables.has(t)) freshTables.add(t);
  }
  const tableMaps = MAP_WRITE_ORDER.filter((m) => m !== 'nf_endpoints');
  const updatesFor = (m: PolicyMapName, pick: (t: number | undefined) => boolean): Entry[] =>
    diffs.get(m)!.updates.filter((e) => pick(tableOfKey(m, e.key)));

  // Phase 1: shared entries, all or nothing.
  const shared = new Journal(io, actual);
  try {
    for (const m of tableMaps) shared.write(m, updatesFor(m, (t) => t === undefined || !freshTables.has(t)), report.updates);
  } catch (e) {
    const problems = shared.rollback();
    report.ok = false;
    report.error = [errText(e), ...problems].join('; ');
    if (e instanceof MapWriteError && e.full) report.fullMap = e.map;
    report.updates = {};
    return report;
  }

  // Phase 2: new endpoints, one transaction each.
  const written = new Set<number>();
  const failedKeys = new Set<string>();
  for (const ep of fresh) {
    const tables = [ep.ingressTable, ep.egressTable].filter((t) => freshTables.has(t) && !written.has(t));
    const journal = new Journal(io, actual);
    const attachedNow: TcDirection[] = [];
    const counts: ReconcileReport['updates'] = {};
    try {
      for (const m of tableMaps) journal.write(m, updatesFor(m, (t) => t !== undefined && tables.includes(t)), counts);
      for (const d of needs(ep)) {
        if (attacher.attached(ep, d)) continue;
        attacher.attach(ep, d);
        attachedNow.push(d);
      }
      const entry = desired.nf_endpoints.get(epKey(ep));
      if (!entry) throw new Error(`program endpoint ${ep.ifname}: no nf_endpoints entry in the compiled maps`);
      journal.write('nf_endpoints', [entry], counts);
      tables.forEach((t) => written.add(t));
      for (const [m, n] of Object.entries(counts)) {
        report.updates[m as PolicyMapName] = (report.updates[m as PolicyMapName] ?? 0) + n;
      }
      report.programmed.push(ep.ifname);
    } catch (e) {
      const problems: string[] = [];
      for (const d of attachedNow.reverse()) {
        try {
          attacher.detach(ep, d);
        } catch (de) {
          problems.push(`detach ${ep.ifname} ${d}: ${errText(de)}`);
        }
      }
      problems.push(...journal.rollback());
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

  // Phase 3: switch already-enforced endpoints to their new tables.
  for (const ep of sorted) {
    const key = epKey(ep);
    if (freshKeys.has(key)) continue;
    const entry = diffs.get('nf_endpoints')!.updates.find((e) => keyHex(e.key) === key);
    if (!entry) continue;
    try {
      io.update('nf_endpoints', entry.key, entry.value);
      report.updates.nf_endpoints = (report.updates.nf_endpoints ?? 0) + 1;
    } catch (e) {
      failedKeys.add(key);
      report.failed.push({ ifname: ep.ifname, ifindex: ep.ifindex, pod: ep.pod, error: `update endpoint ${ep.ifname}: ${errText(e)}` });
    }
  }

  // Phase 4: deletes. Tables still referenced by the final endpoint entries stay.
  const keep = new Set<number>();
  const finalEndpoints = new Map<string, Buffer>();
  for (const [hex, { value }] of actual.nf_endpoints) finalEndpoints.set(hex, value);
  for (const [hex, { value }] of desired.nf_endpoints) if (!failedKeys.has(hex)) finalEndpoints.set(hex, value);
  for (const hex of diffs.get('nf_endpoints')!.deletes.map(keyHex)) finalEndpoints.delete(hex);
  for (const hex of failedKeys) if (!actual.nf_endpoints.has(hex)) finalEndpoints.delete(hex);
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

  const kept = sorted.filter((ep) => !failedKeys.has(epKey(ep)) || actual.nf_endpoints.has(epKey(ep)));
  // A kept endpoint's entry is its desired one unless it failed (then its old entry stays,
  // and so do its hooks).
  const detach = (ref: EndpointRef, d: TcDirection): boolean => {
    try {
      attacher.detach(ref, d);
      return true;
    } catch (e) {
      deleteErrors.push(`detach ${ref.ifname} ${d}: ${errText(e)}`);
      return false;
    }
  };
  for (const ep of kept) {
    if (failedKeys.has(epKey(ep))) continue;
    const needed = needs(ep);
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
  report.exact = report.failed.length === 0 && deleteErrors.length === 0 && withheld === 0;
  return report;
}
