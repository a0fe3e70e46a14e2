// Apply benchmark: a 20,000-policy state directory (bench/statedir.ts) from files to map
// entries, in a child process so its peak RSS is the apply's (bench/apply-child.ts). Each
// round is a fresh process: an agent's first start on that directory. Also timed: the
// reload after one file is edited (parse cache, recompile, diff to the maps).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ApplyChildResult } from './apply-child';
import { jsonChild } from './json-child';
import { median } from './stats';
import { BIG_STATE_DIR, writeStateDir } from './statedir';
import type { ApplyResults } from './types';

export interface ApplyOptions {
  rounds: number;
  log: (msg: string) => void;
}

const child = (dir: string): Promise<ApplyChildResult> => jsonChild<ApplyChildResult>('apply-child', ['--dir', dir]);

export async function runApply(opts: ApplyOptions): Promise<ApplyResults> {
  const spec = BIG_STATE_DIR;
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nf-bench-apply-')), 'state');
  try {
    const bytes = writeStateDir(dir, spec);
    const runs: ApplyChildResult[] = [];
    for (let r = 0; r < opts.rounds; r++) {
      opts.log(
        `apply: ${spec.namespaces * spec.policiesPerNamespace} policies (${(bytes / 1e6).toFixed(1)} MB), round ${r + 1}/${opts.rounds}`,
      );
      runs.push(await child(dir));
    }
    const total = (x: ApplyChildResult): number => x.loadMs + x.compileMs + x.writeMs;
    const mid = (f: (x: ApplyChildResult) => number): number => median(runs.map(f));
    return {
      policies: runs[0].policies,
      files: spec.namespaces + 1,
      bytes,
      errors: runs[0].errors,
      applyMs: mid(total),
      applySamplesMs: runs.map(total),
      loadMs: mid((x) => x.loadMs),
      compileMs: mid((x) => x.compileMs),
      writeMs: mid((x) => x.writeMs),
      reloadMs: mid((x) => x.reloadMs),
      peakRssMb: Math.max(...runs.map((x) => x.rssMb)),
      mapEntries: runs[0].mapEntries,
    };
  } finally {
    fs.rmSync(path.dirname(dir), { recursive: true, force: true });
  }
}
