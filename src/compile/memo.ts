// A cache that lives across compiles. Entries remember the last compile (generation)
// that used them; when the cache holds much more than the last compile used, the
// unused ones are swept, so memory follows the current snapshot, not its history,
// and a hit costs one lookup.
export class Memo<V> {
  private readonly entries = new Map<string, { v: V; gen: number }>();
  private gen = 0;
  private used = 0;

  /** Call once per compile, before any lookup. */
  nextGeneration(): void {
    if (this.entries.size > 2 * this.used + 64) {
      for (const [k, e] of this.entries) if (e.gen !== this.gen) this.entries.delete(k);
    }
    this.gen++;
    this.used = 0;
  }

  clear(): void {
    this.entries.clear();
    this.used = 0;
  }

  find(key: string): V | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.gen !== this.gen) {
      e.gen = this.gen;
      this.used++;
    }
    return e.v;
  }

  set(key: string, v: V): void {
    const e = this.entries.get(key);
    if (e && e.gen === this.gen) e.v = v;
    else {
      this.entries.set(key, { v, gen: this.gen });
      this.used++;
    }
  }

  get(key: string, make: () => V): V {
    let v = this.find(key);
    if (v === undefined) this.set(key, (v = make()));
    return v;
  }
}
