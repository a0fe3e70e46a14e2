// Fail closed: the entry an endpoint gets this pass. A direction whose table cannot be
// enforced (refused by the compiler, or its table did not fit) keeps the endpoint's last
// enforced table there, or, without one, gets the endpoint's isolation table, or, when
// that does not fit either, NF_TABLE_DENY (deny all, no map entries); it is never left
// without a table. Since a new table is written before the old one is deleted,
// replacing a table needs room for both.
import { endpointRevision } from '../compile/hash';
import type { CompiledEndpoint } from '../compile/output';
import { NF_TABLE_DENY } from '../wire/abi';
import { decodeEndpoint, encodeEndpoint, type Endpoint } from '../wire/endpoint';
import type { Direction, Fallback } from './report';
import { hex32, type Tables, type Written } from './tables';

const DIRECTIONS: readonly Direction[] = ['ingress', 'egress'];

const tableOf = (ep: Pick<Endpoint, 'ingressTable' | 'egressTable'>, d: Direction): number =>
  d === 'ingress' ? ep.ingressTable : ep.egressTable;
const chunksOf = (ep: Pick<Endpoint, 'ingressChunks' | 'egressChunks'>, d: Direction): number =>
  d === 'ingress' ? ep.ingressChunks : ep.egressChunks;

/** An endpoint's entry as this pass leaves it: its desired tables where they are in place,
 *  elsewhere what it falls back to. */
export interface Resolution {
  value: Buffer;
  /** The tables it points at. */
  tables: number[];
  fallback: Partial<Record<Direction, Fallback>>;
  /** Why each fallen-back direction could not get its table, with what it runs instead. */
  problems: string[];
}

/** The entry `ep` gets: its desired tables where they are in place (placing them now);
 *  elsewhere its fallback. `value` is its desired entry as compiled, `old` its entry in
 *  the maps (if any); exclusive tables' journals go to `owner`. */
export function resolve(
  tables: Tables,
  ep: CompiledEndpoint,
  value: Buffer,
  old: Buffer | undefined,
  owner: Written[],
): Resolution {
  const enforced = old && decodeEndpoint(old);
  const last = enforced && enforced.id === ep.id ? enforced : undefined;
  const ids = { ingress: ep.ingressTable, egress: ep.egressTable };
  // A fallback table's own chunk count: the program walks exactly that many chunks.
  const chunks = { ingress: ep.ingressChunks, egress: ep.egressChunks };
  const fallback: Resolution['fallback'] = {};
  const problems: string[] = [];
  for (const d of DIRECTIONS) {
    const t = ids[d];
    if (t === 0) continue;
    const problem = ep.refused?.directions.includes(d) ? ep.refused.error : tables.place(t, owner);
    if (problem === undefined) continue;
    const isolation = ep.isolationTables?.[d] ?? 0;
    const kept = last ? tableOf(last, d) : 0;
    // A last resort is never kept: the isolation table may fit now.
    if (last && kept !== 0 && kept !== isolation && kept !== NF_TABLE_DENY) {
      ids[d] = kept;
      chunks[d] = chunksOf(last, d);
      fallback[d] = 'kept';
      problems.push(
        `${d}: ${problem}; keeps its last enforced table ${hex32(kept)} (a new table is written before the old one goes: both must fit)`,
      );
      continue;
    }
    const isolationProblem = isolation === 0 ? 'no isolation table' : tables.place(isolation, []);
    fallback[d] = 'isolated';
    if (isolationProblem === undefined) {
      ids[d] = isolation;
      chunks[d] = ep.isolationChunks?.[d] ?? 1;
      problems.push(`${d}: ${problem}; isolated (denies all but the privileged rules)`);
      continue;
    }
    // The last resort needs no map entry: the program denies that table id outright.
    ids[d] = NF_TABLE_DENY;
    chunks[d] = 1;
    problems.push(
      `${d}: ${problem}; its isolation table did not fit either (${isolationProblem}): denies everything, privileged rules included`,
    );
  }
  const pointsAt = [ids.ingress, ids.egress].filter((t) => t !== 0);
  if (problems.length === 0) return { value, tables: pointsAt, fallback, problems };
  // The revision of the tables it really has: unchanged while they are its last ones
  // (its flows stay established), a new one otherwise (they are evaluated again).
  const same = last !== undefined && last.ingressTable === ids.ingress && last.egressTable === ids.egress;
  const revision = same ? last.revision : endpointRevision(ids.ingress, ids.egress);
  return {
    value: encodeEndpoint({
      ...ep,
      ingressTable: ids.ingress,
      egressTable: ids.egress,
      ingressChunks: chunks.ingress,
      egressChunks: chunks.egress,
      revision,
    }),
    tables: pointsAt,
    fallback,
    problems,
  };
}
