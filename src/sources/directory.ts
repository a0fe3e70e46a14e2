// The directory source: every *.yaml / *.yml below a folder (state-files.ts), multi-document,
// turned into a Snapshot. YAML syntax errors and invalid objects are reported with file and
// line; the rest still loads.
import { CONFIG_OBJECT_KEY, assembleSnapshot, decodeObjects, type DecodedDoc } from '../model/snapshot';
import type { NetfenceConfig, Snapshot, ValidationError } from '../model/types';
import { decodeInWorkers } from './parse-pool';
import { readStateDir, readStateDirSync, type StateFiles } from './state-files';
import { parseYamlText } from './yaml-docs';

export { parseYamlText };

/** A file's documents, decoded (its raw YAML objects are not kept). */
export interface DecodedFile {
  docs: DecodedDoc[];
  /** YAML syntax errors. */
  errors: ValidationError[];
}

/** Below this much text to parse, starting the worker (loading its modules, cold code)
 *  costs more than it saves: 10k pods (4 MB) load slower with it, 100k (42 MB) faster. */
const POOLED_FROM_BYTES = 16 << 20;

/** Decoded files by path, reused while a file's text is unchanged: the agent reloads the
 *  whole tree on every change, and an edit then parses and decodes only the edited file. */
export class ParseCache {
  private readonly files = new Map<string, { text: string; decoded: DecodedFile }>();
  /** Files parsed so far (cache misses): what proves an edit re-parses only its file. */
  parses = 0;

  constructor(private readonly pooledFromBytes = POOLED_FROM_BYTES) {}

  parse(file: string, text: string): DecodedFile {
    const hit = this.files.get(file);
    if (hit?.text === text) return hit.decoded;
    const { objects, errors } = parseYamlText(text, file);
    return this.keep(file, text, { docs: decodeObjects(objects), errors });
  }

  /** parse() of every file; with much to parse (a cold load), shared with a worker thread. */
  async parseAll(state: StateFiles): Promise<DecodedFile[]> {
    const misses: number[] = [];
    let bytes = 0;
    state.files.forEach((f, i) => {
      if (this.files.get(f)?.text !== state.texts[i]) {
        misses.push(i);
        bytes += state.texts[i].length;
      }
    });
    if (bytes >= this.pooledFromBytes) {
      const jobs = misses.map((i) => ({ file: state.files[i], text: state.texts[i] }));
      (await decodeInWorkers(jobs)).forEach((d, j) => this.keep(jobs[j].file, jobs[j].text, d));
    }
    return state.files.map((f, i) => this.parse(f, state.texts[i]));
  }

  private keep(file: string, text: string, decoded: DecodedFile): DecodedFile {
    this.parses++;
    this.files.set(file, { text, decoded });
    return decoded;
  }

  /** Drops the files not listed (removed from the tree). */
  retain(files: readonly string[]): void {
    const keep = new Set(files);
    for (const f of this.files.keys()) if (!keep.has(f)) this.files.delete(f);
  }
}

function collect(files: DecodedFile[]): Snapshot {
  return assembleSnapshot(
    files.map((f) => f.docs),
    files.flatMap((f) => f.errors),
  );
}

/** A Snapshot from YAML text (tests, stdin). */
export function snapshotFromYaml(text: string, file = '<inline>'): Snapshot {
  const { objects, errors } = parseYamlText(text, file);
  return collect([{ docs: decodeObjects(objects), errors }]);
}

function decodeAll(state: StateFiles, cache: ParseCache): DecodedFile[] {
  cache.retain(state.files);
  return state.files.map((f, i) => cache.parse(f, state.texts[i]));
}

async function decodeAllAsync(state: StateFiles, cache: ParseCache): Promise<DecodedFile[]> {
  cache.retain(state.files);
  return cache.parseAll(state);
}

/** snapshotOfFiles, a cold load shared with a worker thread. */
export async function snapshotOfFilesAsync(state: StateFiles, cache = new ParseCache()): Promise<Snapshot> {
  return collect(await decodeAllAsync(state, cache));
}

/** The snapshot of the files readStateDir read; `cache` keeps the files decoded by the
 *  previous loads. */
export function snapshotOfFiles(state: StateFiles, cache = new ParseCache()): Snapshot {
  return collect(decodeAll(state, cache));
}

function unreadable(dir: string, e: unknown): Error {
  return new Error(`load state directory ${dir}: ${(e as Error).message}`);
}

/** Loads a state directory. Throws only when the directory itself cannot be read. */
export function loadStateDir(dir: string): Snapshot {
  let state: StateFiles;
  try {
    state = readStateDirSync(dir);
  } catch (e) {
    throw unreadable(dir, e);
  }
  return snapshotOfFiles(state);
}

async function readAsync(dir: string): Promise<StateFiles> {
  try {
    return await readStateDir(dir);
  } catch (e) {
    throw unreadable(dir, e);
  }
}

/** loadStateDir without holding the event loop while reading; `cache` keeps the files
 *  decoded by the previous loads. */
export async function loadStateDirAsync(dir: string, cache = new ParseCache()): Promise<Snapshot> {
  return snapshotOfFilesAsync(await readAsync(dir), cache);
}

/** The NetfenceConfig of a state directory (defaults without one), without building the
 *  rest of the snapshot: the agent reads its settings before its source starts. */
export async function loadStateDirConfigAsync(dir: string, cache = new ParseCache()): Promise<NetfenceConfig> {
  const files = await decodeAllAsync(await readAsync(dir), cache);
  return assembleSnapshot(files.map((f) => f.docs.filter((d) => d.id === CONFIG_OBJECT_KEY))).config;
}
