// A reader for the plain shape most manifests have (block mappings and sequences, one-line
// flow collections, plain and one-line quoted scalars), about twice as fast as js-yaml on
// 100k pods. Anything else (block scalars, anchors, tags, escapes, multi-line scalars or
// flow collections, odd keys, duplicate keys, bad indentation) makes it give up, and
// js-yaml reads the document as before: what it returns is what js-yaml would have, and it
// never decides what an error is. Scalars resolve through js-yaml's own core-schema types.
import { CORE_SCHEMA, type Type } from 'js-yaml';

/** Thrown to give up (caught in fastLoad, never escapes). */
const UNSUPPORTED = Symbol('unsupported');

function giveUp(): never {
  throw UNSUPPORTED;
}

// js-yaml's implicit types of the core schema (null, bool, int, float), as its loader uses
// them; an unknown build of js-yaml leaves the fast reader off.
const IMPLICIT = (CORE_SCHEMA as unknown as { compiledImplicit?: Type[] }).compiledImplicit;
/** The first characters of the core schema's numbers (and of "~", null). */
const NUMERIC_START = /^[0-9+.~-]/;
// What js-yaml refuses anywhere in a stream, with tabs and carriage returns (indentation
// and line ends the reader leaves to it).
const REFUSED =
  /[\t\r\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x84\x86-\x9F\uFEFF\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?:[^\uD800-\uDBFF]|^)[\uDC00-\uDFFF]/;

/** Character classes (ASCII) of keys and plain scalars, checked by table, not regex. */
const KEY_CHAR = 1;
const PLAIN_CHAR = 2;
const CHARS = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./-')
  CHARS[c.charCodeAt(0)] = KEY_CHAR | PLAIN_CHAR;
// Plain scalars also take these (no indicator, quote, comment or flow character).
for (const c of ':+=@() ~') CHARS[c.charCodeAt(0)] |= PLAIN_CHAR;

const KEYWORDS = new Set(['null', 'Null', 'NULL', 'true', 'True', 'TRUE', 'false', 'False', 'FALSE']);

/** A word that the core schema reads as null or a boolean, not as its text. */
function isKeyword(s: string): boolean {
  return (s.length === 4 || s.length === 5) && KEYWORDS.has(s);
}

const isBlank = (c: string | undefined): boolean => c === undefined || c === ' ';

function resolvePlain(s: string): unknown {
  const n = s.length;
  if (n === 0 || s.charCodeAt(n - 1) === 0x3a || (s[0] === '-' && s[1] === ' ') || s[0] === ':' || s[0] === ' ')
    giveUp();
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || !(CHARS[c] & PLAIN_CHAR) || (c === 0x3a && s.charCodeAt(i + 1) === 0x20)) giveUp();
  }
  if (!NUMERIC_START.test(s) && !isKeyword(s)) return s;
  for (const t of IMPLICIT!) if (t.resolve(s)) return t.construct(s);
  return s;
}

/** Keys: label-like words; a first digit or a keyword would resolve to another text. */
function key(s: string): string {
  const n = s.length;
  const first = s.charCodeAt(0);
  if (n === 0 || (first >= 0x30 && first <= 0x39) || first === 0x2e || first === 0x2d || first === 0x2f) giveUp();
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || !(CHARS[c] & KEY_CHAR)) giveUp();
  }
  if (isKeyword(s) || s === '__proto__') giveUp();
  return s;
}

/** An item's content at `p` opens a block node: a nested item, or a key (a colon ending
 *  a word, before any comment) that is not inside a flow collection or quotes. */
function startsNode(line: string, p: number): boolean {
  const c = line[p];
  if (c === '-' && isBlank(line[p + 1])) return true;
  if (c === undefined || c === '#' || c === '{' || c === '[' || c === '"' || c === "'") return false;
  for (let i = p; i < line.length; i++) {
    if (line[i] === '#' && line[i - 1] === ' ') return false;
    if (line[i] === ':' && isBlank(line[i + 1])) return true;
  }
  return false;
}

/** Only spaces or a comment from `p` to the end of `line`. */
function restIsEmpty(line: string, p: number): boolean {
  while (line[p] === ' ') p++;
  return p >= line.length || (line[p] === '#' && line[p - 1] === ' ');
}

/** A one-line quoted scalar at `p`: [value, end]. */
function quoted(line: string, p: number): [string, number] {
  const q = line[p];
  if (q === '"') {
    const end = line.indexOf('"', p + 1);
    if (end < 0 || line.lastIndexOf('\\', end) > p) giveUp();
    return [line.slice(p + 1, end), end + 1];
  }
  let out = '';
  let from = p + 1;
  for (;;) {
    const end = line.indexOf("'", from);
    if (end < 0) giveUp();
    out += line.slice(from, end);
    if (line[end + 1] !== "'") return [out, end + 1];
    out += "'";
    from = end + 2;
  }
}

/** A one-line flow collection or flow scalar at `p`: [value, end]. */
function flow(line: string, p: number): [unknown, number] {
  const c = line[p];
  if (c === '"' || c === "'") return quoted(line, p);
  if (c === '[' || c === '{') {
    const close = c === '[' ? ']' : '}';
    const out: unknown = c === '[' ? [] : {};
    p = skip(line, p + 1);
    if (line[p] === close) return [out, p + 1];
    for (;;) {
      if (c === '[') {
        const [v, end] = flow(line, p);
        p = skip(line, end);
        if (line[p] === ':') giveUp(); // a single-pair mapping
        (out as unknown[]).push(v);
      } else {
        const end = scanPlain(line, p);
        const k = key(line.slice(p, end).trimEnd());
        if (line[end] !== ':' || line[end + 1] !== ' ') giveUp();
        if ((out as Record<string, unknown>)[k] !== undefined) giveUp();
        const [v, after] = flow(line, skip(line, end + 1));
        (out as Record<string, unknown>)[k] = v;
        p = skip(line, after);
      }
      if (line[p] === close) return [out, p + 1];
      if (line[p] !== ',') giveUp();
      p = skip(line, p + 1);
      if (line[p] === close) giveUp(); // a trailing comma
    }
  }
  const end = scanPlain(line, p);
  if (line[end] === ':') giveUp();
  return [resolvePlain(line.slice(p, end).trimEnd()), end];
}

function skip(line: string, p: number): number {
  while (line[p] === ' ') p++;
  return p;
}

/** End of a plain scalar in a flow collection: a flow indicator or ": ". */
function scanPlain(line: string, p: number): number {
  let i = p;
  for (; i < line.length; i++) {
    const c = line[i];
    if (c === ',' || c === ']' || c === '}' || c === '[' || c === '{' || c === '#') break;
    if (c === ':' && (isBlank(line[i + 1]) || ',]}'.includes(line[i + 1]))) break;
  }
  if (i === p) giveUp();
  return i;
}

class Reader {
  private i = 0;
  /** Significant lines (not blank, not only a comment) and where their content starts. */
  private readonly lines: string[] = [];
  private readonly col: number[] = [];

  constructor(text: string) {
    const all = text.split('\n');
    let first = 0;
    while (first < all.length && restIsEmpty(all[first], 0)) first++;
    if (first < all.length && all[first].startsWith('---')) {
      if (!restIsEmpty(all[first], 3) || !isBlank(all[first][3])) giveUp();
      first++;
    }
    for (let n = first; n < all.length; n++) {
      const line = all[n];
      let c = 0;
      while (line[c] === ' ') c++;
      if (c === line.length || line[c] === '#') continue;
      // Directives, document markers: js-yaml's (the chunks are cut at markers already).
      if (c === 0 && (line[0] === '%' || line.startsWith('---') || line.startsWith('...'))) giveUp();
      this.lines.push(line);
      this.col.push(c);
    }
  }

  document(): unknown {
    if (this.lines.length === 0) return null;
    const v = this.node(this.col[0]);
    if (this.i < this.lines.length) giveUp();
    return v;
  }

  private isItem(i: number): boolean {
    const line = this.lines[i];
    const c = this.col[i];
    return line[c] === '-' && isBlank(line[c + 1]);
  }

  private node(n: number): unknown {
    return this.isItem(this.i) ? this.sequence(n) : this.mapping(n);
  }

  /** Lines at or below indent n end the node; deeper lines are its children's. */
  private atLevel(n: number): boolean {
    if (this.i >= this.lines.length || this.col[this.i] < n) return false;
    if (this.col[this.i] > n) giveUp();
    return true;
  }

  private mapping(n: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    while (this.atLevel(n) && !this.isItem(this.i)) {
      const line = this.lines[this.i];
      const p = this.col[this.i];
      let colon = line.indexOf(':', p);
      while (colon >= 0 && !isBlank(line[colon + 1])) colon = line.indexOf(':', colon + 1);
      if (colon < 0) giveUp();
      const k = key(line.slice(p, colon));
      // A duplicate (or a name Object.prototype has: rare, left to js-yaml).
      if (out[k] !== undefined) giveUp();
      out[k] = this.value(line, colon + 1, n, true);
    }
    return out;
  }

  private sequence(n: number): unknown[] {
    const out: unknown[] = [];
    while (this.atLevel(n) && this.isItem(this.i)) {
      const line = this.lines[this.i];
      const p = skip(line, this.col[this.i] + 1);
      if (startsNode(line, p)) {
        // "- key: value" or "- - item": a node whose first line starts at p.
        this.col[this.i] = p;
        out.push(this.node(p));
      } else out.push(this.value(line, p, n, false));
    }
    return out;
  }

  /** The value starting at `p` of the current line (a key's or an item's, at indent n). */
  private value(line: string, p: number, n: number, ofKey: boolean): unknown {
    p = skip(line, p);
    this.i++;
    if (restIsEmpty(line, p)) {
      if (this.i >= this.lines.length) return null;
      const next = this.col[this.i];
      if (next > n) return this.node(next);
      // A sequence may sit at its key's own indent.
      if (ofKey && next === n && this.isItem(this.i)) return this.sequence(n);
      return null;
    }
    let v: unknown;
    const c = line[p];
    if (c === '{' || c === '[' || c === '"' || c === "'") {
      const [fv, end] = flow(line, p);
      if (!restIsEmpty(line, end)) giveUp();
      v = fv;
    } else {
      const hash = line.indexOf(' #', p);
      v = resolvePlain(line.slice(p, hash < 0 ? line.length : hash).trimEnd());
    }
    // A deeper line after a scalar continues it (or is an error): js-yaml's to read.
    if (this.i < this.lines.length && this.col[this.i] > n) giveUp();
    return v;
  }
}

/** The document of `text` as js-yaml (core schema) reads it, or undefined when the
 *  document is not of the plain shape this reader takes. */
export function fastLoad(text: string): { value: unknown } | undefined {
  if (!IMPLICIT || REFUSED.test(text)) return undefined;
  try {
    return { value: new Reader(text).document() };
  } catch (e) {
    if (e === UNSUPPORTED) return undefined;
    throw e;
  }
}
