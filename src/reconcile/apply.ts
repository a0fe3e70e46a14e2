// Applies a desired map state transactionally, in named phases over one Pass:
//  plan            the diff per map; which endpoints are new (no entry in place, or a hook
//                  it needs lacks our program); the changed entries bucketed by table;
//  writeShared     tables of already-enforced endpoints, each table its own transaction (a
//                  table that does not fit is rolled back and fails only the endpoints that
//                  point at it), then the other shared entries (identities, local
//                  addresses, service CIDRs) all or nothing: a failure there undoes the
//                  whole phase, so the previous state stays;
//  programNew      each new endpoint on its own: its exclusive tables, then the tc
//                  programs its hooks need (CompiledEndpoint.hooks), then its nf_endpoints
//                  entry; a failure rolls back that endpoint only;
//  switchEnforced  changed entries of endpoints that are already enforced (one atomic
//                  write each);
//  prune           deletes in reverse MAP_WRITE_ORDER, keeping every table an endpoint
//                  still points at; programs leave the hooks that no longer need them once
//                  the entries say so;
//  finish          whether the maps now hold exactly the desired content.
// Fail closed: a direction whose table cannot be enforced gets a fallback, never no table
// (src/reconcile/fallback.ts). The current content is read from the maps unless the caller
// knows it (Reconciler).
import { TC_HOOKS, type TcHook } from '../compile/hooks';
import { MAP_WRITE_ORDER } from './order';
import type { CompileResult, CompiledEndpoint, DesiredMaps } from '../compile/output';
import type { PolicyMapName } from '../wire/maps';
import { decodeEndpoint, encodeEndpoint } from '../wire/endpoint';
import { encodeU32, keyHex } from '../wire/bytes';
import type { Attacher, EndpointRef } from '../datapath/attach';
import type { TcDirection } from '../datapath/native-api';
import { resolve, type Resolution } from './fallback';
import { Journal, addCounts, errText, fullMapOf, type Counts } from './journal';
import { readMap, type MapIO } from './mapio';
import { diffMap, emptyMaps, tableOfKey, type ActualMaps, type MapDiff } from './plan';
import type { ReconcileReport } from './report';
import { CONTENT_MAPS, Tables, type Written } from './tables';

export interface ReconcileOptions {
  /** The maps' current content, when the caller knows it (else they are read). */
  known?: ActualMaps;
  /** The isolation tables' entries (CompileResult.isolation): written only when an
   *  endpoint falls back to one. */
  isolation?: CompileResult['isolation'];
  /** ifindex by interface name from the caller's link view (Attacher.list). */
  ifindexes?: ReadonlyMap<string, number>;
}

export function readActual(io: MapIO): ActualMaps {
  const actual = emptyMaps();
  for (const m of MAP_WRITE_ORDER) actual[m] = readMap(io, m);
  return actual;
}

/** One pass: what the phases share. */
interface Pass {
  io: MapIO;
  attacher: Attacher;
  desired: DesiredMaps;
  report: ReconcileReport;
  actual: ActualMaps;
  diffs: Map<PolicyMapName, MapDiff>;
  /** The compiled endpoints by ifindex, and the new ones among them. */
  endpoints: CompiledEndpoint[];
  fresh: CompiledEndpoint[];
  freshKeys: Set<string>;
  tables: Tables;
  /** Tables some already-enforced endpoint points at (now or after this pass). */
  sharedTables: Set<number>;
  /** Entries this pass wrote, and the tables they point at, by endpoint key. */
  written: Map<string, number[]>;
  /** Endpoints this pass failed: they keep their previous entry and hooks. */
  failedKeys: Set<string>;
  /** What the prune phase could not delete or detach, and counter slots that could not be
   *  zeroed (withSlot): each leaves the maps other than desired (the pass is not exact). */
  errors: string[];
  /** Entries left in place because an endpoint still points at their table. */
  withheld: number;
  /** ReconcileOptions.ifindexes. */
  ifindexes?: ReadonlyMap<string, number>;
}

const epKey = (ep: EndpointRef): string => keyHex(encodeU32(ep.ifindex));

/** The tables an entry in the maps points at (read back: the maps may have been read). */
function endpointTables(value: Buffer): number[] {
  const ep = decodeEndpoint(value);
  return [ep.ingressTable, ep.egressTable].filter((t) => t !== 0);
}

export function reconcile(
  io: MapIO,
  attacher: Attacher,
  desired: DesiredMaps,
  endpoints: readonly CompiledEndpoint[],
  opts: ReconcileOptions = {},
): ReconcileReport {
  const p = plan(io, attacher, desired, endpoints, opts);
  if (!writeShared(p)) return p.report;
  for (const ep of p.fresh) programNew(p, ep);
  switchEnforced(p);
  prune(p);
  return finish(p);
}

function plan(
  io: MapIO,
  attacher: Attacher,
  desired: DesiredMaps,
  endpoints: readonly CompiledEndpoint[],
  opts: ReconcileOptions,
): Pass {
  const report: ReconcileReport = {
    ok: true,
    programmed: [],
    detached: [],
    failed: [],
    updates: {},
    deletes: {},
    retiredRuleKeys: [],
    read: !opts.known,
    exact: false,
  };
  const actual = opts.known ?? readActual(io);
  const diffs = new Map<PolicyMapName, MapDiff>(
    MAP_WRITE_ORDER.map((m) => [m, diffMap(m, desired[m] ?? new Map(), actual[m])]),
  );
  // The hooks each endpoint needs (both when it has no desired entry: programNew fails it).
  const needs = (ep: CompiledEndpoint): readonly TcHook[] =>
    desired.nf_endpoints.has(epKey(ep)) ? ep.hooks : TC_HOOKS;
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
  const tables = new Tables(io, actual, diffs, desiredTables, opts.isolation, report);
  return {
    io,
    attacher,
    desired,
    report,
    actual,
    diffs,
    endpoints: sorted,
    fresh,
    freshKeys,
    tables,
    sharedTables,
    written: new Map(),
    failedKeys: new Set(),
    errors: [],
    withheld: 0,
    ifindexes: opts.ifindexes,
  };
}

/** Phase 1: shared tables one by one, then the other shared entries all or nothing;
 *  false when those failed (everything of the phase is undone). */
function writeShared(p: Pass): boolean {
  const journals: Written[] = [];
  for (const t of p.tables.changed()) {
    if (p.sharedTables.has(t) || !p.tables.isDesired(t)) p.tables.place(t, journals);
  }
  const shared = new Journal(p.io, p.actual);
  const counts: Counts = {};
  try {
    for (const m of CONTENT_MAPS) shared.write(m, p.tables.plain[m] ?? [], counts);
  } catch (e) {
    const problems = [...shared.rollback(), ...p.tables.undo(journals)];
    p.report.ok = false;
    p.report.error = [errText(e), ...problems].join('; ');
    const full = fullMapOf(e);
    if (full) p.report.fullMap = full;
    p.report.updates = {};
    return false;
  }
  addCounts(p.report.updates, counts);
  return true;
}

/** Lists an endpoint that is enforced, but not (in every direction) with its desired tables. */
function fellBack(p: Pass, ep: CompiledEndpoint, r: Resolution): void {
  if (r.problems.length === 0) return;
  p.report.failed.push({
    ifname: ep.ifname,
    ifindex: ep.ifindex,
    pod: ep.pod,
    error: `endpoint ${ep.ifname}${ep.pod ? ` (${ep.pod})` : ''} ${r.problems.join('; ')}`,
    fallback: r.fallback,
  });
}

/** Entry `value`, about to replace `old` (if any), with its counter slot ready: the slot
 *  starts from zero unless the entry in place is the same endpoint's on that slot already.
 *  A slot that cannot be zeroed is not taken (0: not counted) and the pass is not exact,
 *  so the next pass reads the maps and tries again: counters never hold enforcement back. */
function withSlot(p: Pass, value: Buffer, old: Buffer | undefined): Buffer {
  const next = decodeEndpoint(value);
  const was = old && decodeEndpoint(old);
  if (next.statsSlot === 0 || (was && was.id === next.id && was.statsSlot === next.statsSlot)) return value;
  try {
    p.io.zeroEndpointCounters(next.statsSlot);
    return value;
  } catch (e) {
    p.errors.push(`zero counter slot ${next.statsSlot}: ${errText(e)} (its endpoint is not counted meanwhile)`);
    return encodeEndpoint({ ...next, statsSlot: 0 });
  }
}

/** Phase 2: a new endpoint in one transaction: its exclusive tables, its programs, its entry. */
function programNew(p: Pass, ep: CompiledEndpoint): void {
  const key = epKey(ep);
  const journals: Written[] = [];
  const attachedNow: TcHook[] = [];
  const counts: Counts = {};
  try {
    const entry = p.desired.nf_endpoints.get(key);
    if (!entry) throw new Error(`no nf_endpoints entry in the compiled maps`);
    const old = p.actual.nf_endpoints.get(key)?.value;
    const r = resolve(p.tables, ep, entry.value, old, journals);
    for (const d of ep.hooks) {
      if (p.attacher.attached(ep, d)) continue;
      p.attacher.attach(ep, d);
      attachedNow.push(d);
    }
    const journal = new Journal(p.io, p.actual);
    journals.push({ journal });
    journal.write('nf_endpoints', [{ key: encodeU32(ep.ifindex), value: withSlot(p, r.value, old) }], counts);
    addCounts(p.report.updates, counts);
    p.written.set(key, r.tables);
    p.report.programmed.push(ep.ifname);
    fellBack(p, ep, r);
  } catch (e) {
    const problems: string[] = [];
    for (const d of attachedNow.reverse()) {
      try {
        p.attacher.detach(ep, d);
      } catch (de) {
        problems.push(`detach ${ep.ifname} ${d}: ${errText(de)}`);
      }
    }
    // Its exclusive tables go again (a later endpoint of the same table writes it anew).
    problems.push(...p.tables.undo(journals));
    p.failedKeys.add(key);
    const full = fullMapOf(e);
    if (full) p.report.fullMap ??= full;
    p.report.failed.push({
      ifname: ep.ifname,
      ifindex: ep.ifindex,
      pod: ep.pod,
      error: [`program endpoint ${ep.ifname}: ${errText(e)}`, ...problems].join('; '),
    });
  }
}

/** Phase 3: already-enforced endpoints switch to their new tables (or fallbacks). One
 *  whose entry is unchanged and whose tables are in place has nothing to do. */
function switchEnforced(p: Pass): void {
  const changed = new Set(p.diffs.get('nf_endpoints')!.updates.map((e) => keyHex(e.key)));
  const tableFailed = (ep: CompiledEndpoint): boolean =>
    p.tables.failure(ep.ingressTable) !== undefined || p.tables.failure(ep.egressTable) !== undefined;
  for (const ep of p.endpoints) {
    const key = epKey(ep);
    const entry = p.desired.nf_endpoints.get(key);
    if (p.freshKeys.has(key) || !entry) continue;
    if (!changed.has(key) && !ep.refused && !tableFailed(ep)) continue;
    try {
      const old = p.actual.nf_endpoints.get(key)!.value;
      const r = resolve(p.tables, ep, entry.value, old, []);
      const value = old.equals(r.value) ? old : withSlot(p, r.value, old);
      if (!old.equals(value)) {
        p.io.update('nf_endpoints', encodeU32(ep.ifindex), value);
        p.report.updates.nf_endpoints = (p.report.updates.nf_endpoints ?? 0) + 1;
        p.written.set(key, r.tables);
      }
      fellBack(p, ep, r);
    } catch (e) {
      p.failedKeys.add(key);
      p.report.failed.push({
        ifname: ep.ifname,
        ifindex: ep.ifindex,
        pod: ep.pod,
        error: `update endpoint ${ep.ifname}: ${errText(e)}`,
      });
    }
  }
}

/** Phase 4: deletes. The entries of endpoints gone, the hooks no longer needed, then the
 *  table entries that no final endpoint entry points at. */
function prune(p: Pass): void {
  const gone = p.diffs.get('nf_endpoints')!.deletes;
  // The tables each endpoint entry points at once this pass is done.
  const final = new Map<string, number[]>();
  for (const [hex, { value }] of p.actual.nf_endpoints) final.set(hex, endpointTables(value));
  for (const [hex, tables] of p.written) final.set(hex, tables);
  for (const hex of gone.map(keyHex)) final.delete(hex);
  deleteKeys(p, 'nf_endpoints', gone);
  detachUnneeded(p, new Set(final.keys()));
  deleteTables(p, new Set([...final.values()].flat()));
}

/** Deletes keys from a map (batched where it can); false when that failed. */
function deleteKeys(p: Pass, m: PolicyMapName, keys: Buffer[]): boolean {
  if (keys.length === 0) return true;
  try {
    const n =
      keys.length > 1 && p.io.supportsBatch(m)
        ? p.io.deleteBatch(m, keys)
        : keys.filter((k) => p.io.delete(m, k)).length;
    p.report.deletes[m] = (p.report.deletes[m] ?? 0) + n;
    return true;
  } catch (e) {
    p.errors.push(`delete from ${m}: ${errText(e)}`);
    return false;
  }
}

function detach(p: Pass, ref: EndpointRef, d: TcDirection): boolean {
  try {
    p.attacher.detach(ref, d);
    return true;
  } catch (e) {
    p.errors.push(`detach ${ref.ifname} ${d}: ${errText(e)}`);
    return false;
  }
}

/** Programs leave the hooks an endpoint with an entry (`entries`, by key) no longer needs,
 *  and every interface without one. An endpoint's final entry has its compiled hooks,
 *  fallback or not (a fallback replaces a table only where there is one, and keeps the
 *  flags); one that failed keeps its old entry and hooks. */
function detachUnneeded(p: Pass, entries: ReadonlySet<string>): void {
  const kept = p.endpoints.filter((ep) => entries.has(epKey(ep)));
  for (const ep of kept) {
    if (p.failedKeys.has(epKey(ep))) continue;
    for (const d of TC_HOOKS) {
      if (!ep.hooks.includes(d) && p.attacher.attached(ep, d) && detach(p, ep, d))
        p.report.detached.push(`${ep.ifname}/${d}`);
    }
  }
  const wanted = new Set(kept.map((ep) => ep.ifname));
  for (const ref of p.attacher.list(p.ifindexes)) {
    if (wanted.has(ref.ifname)) continue;
    for (const d of TC_HOOKS) detach(p, ref, d);
    p.report.detached.push(ref.ifname);
  }
}

/** Table entries gone from the desired maps, in reverse write order, except those of a
 *  table some endpoint entry still points at (`keep`). */
function deleteTables(p: Pass, keep: ReadonlySet<number>): void {
  for (const m of [...CONTENT_MAPS].reverse()) {
    const deletes = p.diffs.get(m)!.deletes;
    const allowed = deletes.filter((k) => {
      const t = tableOfKey(m, k);
      return t === undefined || !keep.has(t);
    });
    p.withheld += deletes.length - allowed.length;
    if (deleteKeys(p, m, allowed) && m === 'nf_rules') p.report.retiredRuleKeys = allowed;
  }
}

function finish(p: Pass): ReconcileReport {
  if (p.errors.length > 0) p.report.error = p.errors.join('; ');
  p.report.failed.sort((a, b) => a.ifindex - b.ifindex);
  p.report.exact = p.report.failed.length === 0 && p.errors.length === 0 && p.withheld === 0;
  return p.report;
}
