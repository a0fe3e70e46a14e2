// Deterministic 32-bit ids derived from content: the same key always gets the same
// id, so ids stay stable across runs and nodes and a new key does not renumber others.
import { hash } from 'node:crypto';
import { NF_TABLE_DENY, NF_TABLE_MASK } from '../wire/abi';

/** First 32 bits of SHA-256 of `text`. */
export function hash32(text: string): number {
  // Hex, not a Buffer: a Buffer digest allocates a backing store per call (slower at 100k).
  return parseInt(hash('sha256', text, 'hex').slice(0, 8), 16);
}

/** An endpoint's policy revision: changes whenever either table does (conntrack entries
 *  of another revision are evaluated again). Never 0. */
export function endpointRevision(
  ingressTable: number,
  egressTable: number,
  hash: (text: string) => number = hash32,
): number {
  return hash(`revision\0${ingressTable}\0${egressTable}`) || 1;
}

export type IdKind = 'identity' | 'table' | 'endpoint';

/** The hash an id of a kind starts from. */
export function idHash(kind: IdKind, key: string): number {
  return hash32(`${kind}\0${key}`);
}

/** Bits an id of a kind may use: table ids leave the top byte to the chunk number of
 *  the bitmap maps' keys (NF_CHUNK_SHIFT in bpf/include/netfence.h). */
const ID_MASK: Record<IdKind, number> = { identity: 0xffffffff, table: NF_TABLE_MASK, endpoint: 0xffffffff };
/** Ids the datapath reserves beyond 0 ("none"): the deny-all table. */
const RESERVED: Record<IdKind, ReadonlySet<number>> = {
  identity: new Set(),
  table: new Set([NF_TABLE_DENY]),
  endpoint: new Set(),
};

/** A key to number: `h` its masked hash, `id` set by probeIds. */
export interface Numbered {
  readonly key: string;
  h: number;
  id: number;
}

/** The hash an id of `kind` for `key` starts from (within the kind's bits). */
export function maskedHash(kind: IdKind, h: number): number {
  return (h & ID_MASK[kind]) >>> 0;
}

/**
 * Ids for entries of distinct keys: their masked hash, with linear probing on
 * collisions (and on the ids the datapath reserves: 0 for "none", NF_TABLE_DENY).
 * Keys are probed in (hash, key) order, so the outcome depends only on the set of keys.
 * Sorts `entries`.
 */
export function probeIds(entries: Numbered[], kind: IdKind): void {
  const mask = ID_MASK[kind];
  const reserved = RESERVED[kind];
  sortByHash(entries);
  // In (hash, key) order, until a probe wraps past the mask, the ids given are
  // increasing and every id from an entry's hash up to the last id given is taken:
  // the first free one is the hash or the one after the last, no set needed.
  let last = -1;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    let id = Math.max(e.h, last + 1);
    while (id === 0 || reserved.has(id)) id++;
    if (id > mask) return probeWrapping(entries, mask, reserved);
    e.id = last = id;
  }
}

const byKey = (a: Numbered, b: Numbered): number => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
/** Entries up to this many sort as one number each: hash (32 bits) * INDEX_SPAN + index < 2^53. */
const INDEX_SPAN = 2 ** 21;

/** Sorts entries by (hash, key). At 100k keys a comparator sort costs ~100 ms; a typed
 *  array of hash-and-index numbers sorts natively, and keys are compared only within
 *  the (rare) runs of an equal hash. */
function sortByHash(entries: Numbered[]): void {
  const n = entries.length;
  if (n >= INDEX_SPAN) {
    entries.sort((a, b) => a.h - b.h || byKey(a, b));
    return;
  }
  const order = new Float64Array(n);
  for (let i = 0; i < n; i++) order[i] = entries[i].h * INDEX_SPAN + i;
  order.sort();
  const was = entries.slice();
  for (let i = 0; i < n; i++) entries[i] = was[order[i] % INDEX_SPAN];
  for (let i = 0; i < n;) {
    let j = i + 1;
    while (j < n && entries[j].h === entries[i].h) j++;
    if (j - i > 1) entries.splice(i, j - i, ...entries.slice(i, j).sort(byKey));
    i = j;
  }
}

/** probeIds when a probe wraps: every id taken kept in a set. */
function probeWrapping(entries: Numbered[], mask: number, reserved: ReadonlySet<number>): void {
  const used = new Set<number>();
  for (const e of entries) {
    let id = e.h;
    while (id === 0 || used.has(id) || reserved.has(id)) id = ((id + 1) & mask) >>> 0;
    used.add(id);
    e.id = id;
  }
}

/** Ids for distinct keys (see probeIds). `hash` may be a memoized idHash. */
export function assignIds(
  keys: Iterable<string>,
  kind: IdKind,
  hash: (kind: IdKind, key: string) => number = idHash,
): Map<string, number> {
  const entries = [...new Set(keys)].map((key) => ({ key, h: maskedHash(kind, hash(kind, key)), id: 0 }));
  probeIds(entries, kind);
  return new Map(entries.map((e) => [e.key, e.id]));
}
