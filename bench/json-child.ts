// A benchmark child process (dist/bench/<name>.js) run to its end: its stdout is one JSON
// result, its stderr the reason when it fails. A child of its own, so its peak RSS is its work's.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from './datapath';

export function jsonChild<T>(name: string, args: readonly string[], nodeFlags: readonly string[] = []): Promise<T> {
  const script = path.join(REPO_ROOT, 'dist', 'bench', `${name}.js`);
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [...nodeFlags, script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', (e) => reject(new Error(`run ${name}: ${e.message}`)));
    p.on('close', (code) => {
      if (code === 0) resolve(JSON.parse(out) as T);
      else reject(new Error(`run ${name} ${args.join(' ')}: exit ${code}: ${err.trim().slice(0, 400)}`));
    });
  });
}
