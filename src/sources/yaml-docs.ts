// The documents of one YAML file, fast: js-yaml builds plain objects about 20 times faster
// than `yaml`'s Document API (a 20k-policy directory: 0.8 s instead of 17 s), so the file
// is cut at its document markers and each document goes through js-yaml. `yaml` stays for
// what it does better, each time for that document alone: the line of a field (only asked
// for when an object is rejected), the message of a syntax error, and documents with
// anchors (its alias limit guards against expansion bombs) or with what the core schema
// of js-yaml refuses (custom tags): those documents are read exactly as before.
import { CORE_SCHEMA, load } from 'js-yaml';
import { LineCounter, parseDocument, type Document } from 'yaml';
import type { PathSegment } from '../model/field';
import type { SourceObject } from '../model/snapshot';
import type { ValidationError } from '../model/types';

export interface ParsedFile {
  objects: SourceObject[];
  errors: ValidationError[];
}

interface Chunk {
  text: string;
  /** 1-based line of the chunk's first line in the file. */
  line: number;
}

// A line starting with a document marker ends the document before it (or, for "...", the
// document it closes): YAML forbids such a line inside any node, so cutting there splits
// exactly where a YAML parser would. Directive lines (%YAML, %TAG) right before a "---"
// belong to the document after it.
const DOC_START = /^---(?=[ \t\r\n]|$)/;
const DOC_END = /^\.\.\.(?=[ \t\r\n]|$)/;

function chunks(text: string): Chunk[] {
  const out: Chunk[] = [];
  let start = 0;
  let startLine = 1;
  let directives: { at: number; line: number } | undefined;
  let line = 1;
  for (let i = 0; i < text.length; line++) {
    const nl = text.indexOf('\n', i);
    const end = nl < 0 ? text.length : nl + 1;
    const c = text[i];
    if (c === '%') directives ??= { at: i, line };
    else if (c === '-' && DOC_START.test(text.slice(i, i + 4))) {
      const cut = directives ?? { at: i, line };
      if (cut.at > start) {
        out.push({ text: text.slice(start, cut.at), line: startLine });
        [start, startLine] = [cut.at, cut.line];
      }
      directives = undefined;
    } else if (c === '.' && DOC_END.test(text.slice(i, i + 4))) {
      out.push({ text: text.slice(start, end), line: startLine });
      [start, startLine] = [end, line + 1];
      directives = undefined;
    } else if (directives && text.slice(i, end).trim() !== '') directives = undefined;
    i = end;
  }
  out.push({ text: text.slice(start), line: startLine });
  return out;
}

/** Line (in the file) of the deepest node on `segments` that exists in the document. */
function lineIn(doc: Document, lc: LineCounter, offset: number, segments: PathSegment[]): number | undefined {
  for (let n = segments.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(segments.slice(0, n), true);
    const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
    if (range) return lc.linePos(range[0]).line + offset;
  }
  return undefined;
}

/** The chunk through `yaml` (positions kept). */
function slowParse(c: Chunk): { doc: Document; lc: LineCounter } {
  const lc = new LineCounter();
  return { doc: parseDocument(c.text, { lineCounter: lc }), lc };
}

/** Line of the chunk's first content (what `yaml` reports for the document's root node):
 *  asked for every object (the snapshot names where each one came from), so no split. */
function firstContentLine(c: Chunk): number {
  const t = c.text;
  let line = c.line;
  for (let i = 0; i < t.length; line++) {
    const nl = t.indexOf('\n', i);
    const end = nl < 0 ? t.length : nl;
    let j = i === 0 && DOC_START.test(t.slice(0, 4)) ? 3 : i;
    while (j < end && (t[j] === ' ' || t[j] === '\t' || t[j] === '\r')) j++;
    if (j < end && t[j] !== '#' && t[j] !== '%') return line;
    i = end + 1;
  }
  return c.line;
}

function syntaxError(file: string, line: number | undefined, message: string): ValidationError {
  return {
    file,
    ...(line !== undefined && { line }),
    object: '<yaml document>',
    field: '',
    message: `parse YAML: ${message.split('\n')[0]}`,
  };
}

function parseChunk(c: Chunk, file: string, out: ParsedFile): void {
  let js: unknown;
  let slow: { doc: Document; lc: LineCounter } | undefined;
  try {
    if (c.text.includes('&')) throw new Error('anchors: read by yaml');
    js = load(c.text, { schema: CORE_SCHEMA, filename: file });
  } catch {
    slow = slowParse(c);
    const e = slow.doc.errors[0];
    if (e) {
      const line = e.linePos?.[0].line;
      out.errors.push(syntaxError(file, line === undefined ? undefined : line + c.line - 1, e.message));
      return;
    }
    try {
      js = slow.doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      // An alias bomb ("Excessive alias count ..."): this document only.
      out.errors.push(syntaxError(file, firstContentLine(c), (err as Error).message));
      return;
    }
  }
  if (js === null || js === undefined) return; // an empty document (a trailing "---")
  out.objects.push({
    doc: js,
    file,
    locate: (segments) => {
      if (segments.length === 0) return firstContentLine(c);
      slow ??= slowParse(c);
      return lineIn(slow.doc, slow.lc, c.line - 1, segments);
    },
  });
}

/** Parses one file's text; `file` is the name used in messages. */
export function parseYamlText(text: string, file: string): ParsedFile {
  const out: ParsedFile = { objects: [], errors: [] };
  for (const c of chunks(text)) parseChunk(c, file, out);
  return out;
}
