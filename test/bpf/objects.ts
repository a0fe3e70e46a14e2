// Where the compiled BPF objects live; builds them (make -C bpf) when asked.
import { execFileSync } from 'node:child_process';
import path from 'node:path';

export const root = path.resolve(__dirname, '../../..');

export function buildObjects(): void {
  execFileSync('make', ['-s', '-C', path.join(root, 'bpf')], { stdio: 'inherit' });
}

export function objectPath(name: 'netfence' | 'prefilter'): string {
  return path.join(root, 'bpf/.output', `${name}.bpf.o`);
}
