// The directory source: every *.yaml / *.yml below a folder (recursively, in sorted
// order, symlinks followed), multi-document, turned into a Snapshot. YAML syntax errors
// and invalid objects are reported with file and line; the rest still loads.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { buildSnapshot, type SourceObject } from '../model/snapshot';
import type { NetfenceConfig, Snapshot } from '../model/types';
import { parseYamlText, type ParsedFile } from './yaml-docs';

export { parseYamlText };

const YAML_FILE = /\.ya?ml$/;

/** Parsed files by path, reused while a file's text is unchanged: the agent reloads the whole
 *  tree on every change, and an edit then re-parses only the edited file. */
export class ParseCache {
  private readonly files = new Map<string, { text: string; parsed: ParsedFile }>();
  /** Files parsed so far (cache misses): what proves an edit re-parses only its file. */
  parses = 0;

  parse(file: string, text: string): ParsedFile {
    const hit = this.files.get(file);
    if (hit?.text === text) return hit.parsed;
    this.parses++;
    const parsed = parseYamlText(text, file);
    this.files.set(file, { text, parsed });
    return parsed;
  }

  /** Drops the files not listed (removed from the tree). */
  retain(files: readonly string[]): void {
    const keep = new Set(files);
    for (const f of this.files.keys()) if (!keep.has(f)) this.files.delete(f);
  }
}

function collect(files: ParsedFile[]): Snapshot {
  const snapshot = buildSnapshot(files.flatMap((f) => f.objects));
  snapshot.errors.unshift(...files.flatMap((f) => f.errors));
  return snapshot;
}

/** A Snapshot from YAML text (tests, stdin). */
export function snapshotFromYaml(text: string, file = '<inline>'): Snapshot {
  return collect([parseYamlText(text, file)]);
}

function listYaml(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const p = path.join(dir, name);
      if (fs.statSync(p).isDirectory()) return listYaml(p);
      return YAML_FILE.test(name) ? [p] : [];
    });
}

/** Loads a state directory. Throws only when the directory itself cannot be read. */
export function loadStateDir(dir: string): Snapshot {
  let files: string[];
  try {
    files = listYaml(dir);
  } catch (e) {
    throw new Error(`load state directory ${dir}: ${(e as Error).message}`);
  }
  return collect(files.map((f) => parseYamlText(fs.readFileSync(f, 'utf8'), f)));
}

async function listYamlAsync(dir: string): Promise<string[]> {
  const names = (await fsp.readdir(dir)).sort();
  const nested = await Promise.all(
    names.map(async (name) => {
      const p = path.join(dir, name);
      if ((await fsp.stat(p)).isDirectory()) return listYamlAsync(p);
      return YAML_FILE.test(name) ? [p] : [];
    }),
  );
  return nested.flat();
}

async function parseDirAsync(dir: string, cache: ParseCache): Promise<ParsedFile[]> {
  let files: string[];
  try {
    files = await listYamlAsync(dir);
  } catch (e) {
    throw new Error(`load state directory ${dir}: ${(e as Error).message}`);
  }
  const texts = await Promise.all(files.map((f) => fsp.readFile(f, 'utf8')));
  cache.retain(files);
  return files.map((f, i) => cache.parse(f, texts[i]));
}

/** loadStateDir without blocking the event loop (the agent reloads on change); `cache`
 *  keeps the files parsed by the previous loads. */
export async function loadStateDirAsync(dir: string, cache = new ParseCache()): Promise<Snapshot> {
  return collect(await parseDirAsync(dir, cache));
}

/** The NetfenceConfig of a state directory (defaults without one), without building the
 *  rest of the snapshot: the agent reads its settings before its source starts. */
export async function loadStateDirConfigAsync(dir: string, cache = new ParseCache()): Promise<NetfenceConfig> {
  const settings = (o: SourceObject): boolean => {
    const kind = (o.doc as { kind?: unknown } | null)?.kind;
    return kind === 'NetfenceConfig' || kind === 'List';
  };
  return buildSnapshot((await parseDirAsync(dir, cache)).flatMap((f) => f.objects.filter(settings))).config;
}
