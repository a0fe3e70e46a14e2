// The agents' working copy of a state directory, changed atomically so an agent never
// loads half a change: every write goes to a temporary file renamed into place.
import { cpSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/** Copies a state directory, leaving out top-level entries named in `exclude`. */
export function copyStateDir(from: string, to: string, exclude: readonly string[] = []): void {
  cpSync(from, to, { recursive: true, filter: (src) => !exclude.includes(relative(from, src).split('/')[0]) });
}

export function writeAtomic(file: string, text: string): void {
  writeFileSync(`${file}.tmp~`, text);
  renameSync(`${file}.tmp~`, file);
}

/** All YAML below `dir`, concatenated as one multi-document text (sorted by path). */
export function concatYaml(dir: string): string {
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.ya?ml$/.test(name)) files.push(p);
    }
  };
  walk(dir);
  return files.map((f) => `# ${relative(dir, f)}\n${readFileSync(f, 'utf8').trim()}\n`).join('---\n');
}
