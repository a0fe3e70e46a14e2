// The agent's last-good store (model/last-good) on disk, beside the names file:
// /run/netfence/<hash of the bpffs root>/last-good.json. A restarted agent loads it before
// its first snapshot, so an object whose current version is rejected keeps the version the
// previous agent enforced instead of disappearing (which would open what it denied). The
// file carries a checksum of its data: a damaged or foreign file is ignored, never trusted.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { LastGood, type LastGoodData } from '../model/last-good';
import { DEFAULT_RUN_DIR, namesFilePath } from './names-file';
import { writeFileAtomic } from './write-atomic';

export const LAST_GOOD_FILE_VERSION = 1;

interface Saved {
  version: typeof LAST_GOOD_FILE_VERSION;
  /** sha256 of JSON.stringify(data). */
  sha256: string;
  data: LastGoodData;
}

export function lastGoodFilePath(bpffsRoot: string, runDir = DEFAULT_RUN_DIR): string {
  return path.join(path.dirname(namesFilePath(bpffsRoot, runDir)), 'last-good.json');
}

const digest = (text: string): string => createHash('sha256').update(text).digest('hex');

export class LastGoodFile {
  /** What the file holds now (as written or read), so unchanged stores are not rewritten. */
  private saved?: { store: LastGood; revision: number; sha256: string };

  constructor(readonly file: string) {}

  /** The saved store, or an empty one: no file (first start) is no warning; a file that
   *  cannot be used is ignored with one, never an error that stops the agent. */
  load(): { store: LastGood; warning?: string } {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { store: new LastGood() };
      return this.ignore((e as Error).message);
    }
    try {
      const saved = JSON.parse(text) as Partial<Saved>;
      if (saved.version !== LAST_GOOD_FILE_VERSION)
        return this.ignore(`version: expected ${LAST_GOOD_FILE_VERSION}, got ${JSON.stringify(saved.version)}`);
      const sha256 = digest(JSON.stringify(saved.data) ?? '');
      if (saved.sha256 !== sha256) return this.ignore('sha256: does not match the data (damaged or edited)');
      const store = LastGood.fromData(saved.data!);
      this.saved = { store, revision: store.revision, sha256 };
      return { store };
    } catch (e) {
      return this.ignore((e as Error).message);
    }
  }

  private ignore(cause: string): { store: LastGood; warning: string } {
    return {
      store: new LastGood(),
      warning: `load last-good file ${this.file}: ${cause} (ignored: objects rejected now have no last valid version until fixed)`,
    };
  }

  /** Writes `store` atomically when it changed since the last write; true when written. */
  async save(store: LastGood): Promise<boolean> {
    const revision = store.revision;
    if (this.saved?.store === store && this.saved.revision === revision) return false;
    const data = JSON.stringify(store.toData());
    const sha256 = digest(data);
    const changed = this.saved?.sha256 !== sha256;
    if (changed)
      await writeFileAtomic(this.file, `{"version":${LAST_GOOD_FILE_VERSION},"sha256":"${sha256}","data":${data}}\n`);
    this.saved = { store, revision, sha256 };
    return changed;
  }
}
