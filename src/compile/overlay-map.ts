// A read-only Map that is a flat root map plus a few changes, so a compile that
// changes a few entries of a 100k-entry map hands out a new map in O(changes), not a
// copy. Iteration is the root's order (replaced values in place, deleted keys left
// out), then the added keys in the order they were added.

const DELETED = null;

export class OverlayMap<K, V> extends Map<K, V> {
  private readonly count: number;

  /** `changes`: key -> its value, or null when deleted from `root` (owned by this map). */
  private constructor(
    readonly root: ReadonlyMap<K, V>,
    private readonly changes: ReadonlyMap<K, V | typeof DELETED>,
    count: number,
  ) {
    super();
    this.count = count;
  }

  /** `base` (flat, or an overlay) with `changes` made in order: undefined deletes a
   *  key, a value replaces a present key's value in place or adds an absent key last.
   *  Undefined when a key of the root deleted earlier comes back (a Map would put it
   *  last, this map cannot). */
  static derive<K, V>(base: ReadonlyMap<K, V>, changes: Iterable<[K, V | undefined]>): OverlayMap<K, V> | undefined {
    const root = base instanceof OverlayMap ? (base.root as ReadonlyMap<K, V>) : base;
    const made = new Map(base instanceof OverlayMap ? (base.changes as ReadonlyMap<K, V | null>) : []);
    let count = base.size;
    for (const [k, v] of changes) {
      const present = has(root, made, k);
      if (v === undefined) {
        if (!present) continue;
        count--;
        if (root.has(k)) made.set(k, DELETED);
        else made.delete(k);
      } else if (present) {
        if (root.has(k) && root.get(k) === v) made.delete(k);
        else made.set(k, v);
      } else {
        if (root.has(k)) return undefined;
        made.set(k, v);
        count++;
      }
    }
    return new OverlayMap(root, made, count);
  }

  /** How many keys differ from the root. */
  get depth(): number {
    return this.changes.size;
  }

  override get size(): number {
    return this.count;
  }

  override get(k: K): V | undefined {
    const c = this.changes.get(k);
    return c === undefined ? this.root.get(k) : (c ?? undefined);
  }

  override has(k: K): boolean {
    return has(this.root, this.changes, k);
  }

  override forEach(fn: (v: V, k: K, map: Map<K, V>) => void, thisArg?: unknown): void {
    for (const [k, v] of this.entries()) fn.call(thisArg, v, k, this);
  }

  override *entries(): MapIterator<[K, V]> {
    for (const [k, v] of this.root) {
      const c = this.changes.get(k);
      if (c === undefined) yield [k, v];
      else if (c !== DELETED) yield [k, c];
    }
    for (const [k, c] of this.changes) if (c !== DELETED && !this.root.has(k)) yield [k, c];
  }

  override [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }

  override *keys(): MapIterator<K> {
    for (const [k] of this.entries()) yield k;
  }

  override *values(): MapIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }

  override set(): this {
    throw new Error('OverlayMap is read-only');
  }

  override delete(): boolean {
    throw new Error('OverlayMap is read-only');
  }

  override clear(): void {
    throw new Error('OverlayMap is read-only');
  }
}

function has<K, V>(root: ReadonlyMap<K, V>, changes: ReadonlyMap<K, V | null>, k: K): boolean {
  const c = changes.get(k);
  return c === undefined ? root.has(k) : c !== DELETED;
}
