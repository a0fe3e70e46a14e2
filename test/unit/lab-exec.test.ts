// Lab and bench tooling run the system's tools even when PATH starts with a folder that
// shadows one (under `npm run`, node_modules/.bin holds an unrelated `nft`).
import test from 'ava';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../src/lab/exec';
import { run as benchRun } from '../../bench/exec';

test('a tool shadowed early in PATH is still the system one', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nf-path-'));
  const saved = process.env.PATH;
  t.teardown(() => {
    process.env.PATH = saved;
    rmSync(dir, { recursive: true, force: true });
  });
  writeFileSync(path.join(dir, 'ip'), '#!/bin/sh\necho shadow\n');
  chmodSync(path.join(dir, 'ip'), 0o755);
  process.env.PATH = `${dir}:${saved ?? ''}`;
  const lab = await run(['ip', '-V']);
  const bench = await benchRun('ip', ['-V']);
  for (const out of [lab.stdout, bench.stdout]) {
    t.notRegex(out, /shadow/);
    t.regex(out, /ip(route2)? utility/);
  }
});
