// One shared copy of a string that many decoded objects repeat (a namespace, a node name, a
// label value, a port name): 100k pods otherwise hold a copy per pod of each. The copy kept
// is a fresh one: V8 cuts parsed strings of 13 or more characters out of the parser's input
// (sliced strings), and a kept slice holds that whole input (for js-yaml, a copy of the
// document's text) alive. The pool is bounded: it starts over when full, so unique values
// (names) and values of objects long gone cost nothing lasting.
const MAX_ENTRIES = 1 << 16;
/** Shorter strings are copied out of their input already when sliced. */
const SLICED_FROM = 13;

let pool = new Map<string, string>();
let enabled = true;

/** Off where the strings are only copied out (a parse worker: a message copies each string
 *  anyway), so sharing them there is wasted work. */
export function setInterning(on: boolean): void {
  enabled = on;
  pool = new Map();
}

export function intern(s: string): string {
  if (!enabled) return s;
  const hit = pool.get(s);
  if (hit !== undefined) return hit;
  if (pool.size >= MAX_ENTRIES) pool = new Map();
  const copy = own(s);
  pool.set(copy, copy);
  return copy;
}

/** A string of its own, not pooled: for values that do not repeat (an object's name, an
 *  address), which would only churn the pool (100k pods' names emptied it every 65k). */
export function own(s: string): string {
  if (!enabled || s.length < SLICED_FROM) return s;
  // Concatenation then slice: a flat copy of `s` alone, whatever `s` was cut from.
  return ` ${s}`.slice(1);
}
