// Content hash of a state directory (the YAML the directory source reads), reported
// with the applied generation so tools can wait until an agent enforces what they wrote.
import { createHash } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';

const YAML_FILE = /\.ya?ml$/;

async function files(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await fsp.readdir(path.join(dir, rel))).sort()) {
    const r = path.join(rel, name);
    if ((await fsp.stat(path.join(dir, r))).isDirectory()) out.push(...(await files(dir, r)));
    else if (YAML_FILE.test(name)) out.push(r);
  }
  return out;
}

export async function stateDirHash(dir: string): Promise<string> {
  const h = createHash('sha256');
  for (const f of await files(dir)) {
    h.update(`${f}\0`);
    h.update(await fsp.readFile(path.join(dir, f)));
    h.update('\0');
  }
  return h.digest('hex');
}
