// Lab and bench tooling run the system's tools even when PATH starts with a folder that
// shadows one (under `npm run`, node_modules/.bin holds an unrelated `nft`).
import test from 'ava';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../src/lab/exec';

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
  const { stdout } = await run(['ip', '-V']);
  t.notRegex(stdout, /shadow/);
  t.regex(stdout, /ip(route2)? utility/);
});

test('run pipes its input and rejects naming the command, its exit and its stderr', async (t) => {
  t.is((await run(['cat'], 'hello')).stdout, 'hello');
  const err = await t.throwsAsync(run(['sh', '-c', 'cat >/dev/null; echo broken >&2; exit 3'], 'x'));
  t.regex(err!.message, /^run sh -c .*: exit 3: broken$/);
});

test('run kills a command past its timeout and says so', async (t) => {
  const started = Date.now();
  const err = await t.throwsAsync(run(['sleep', '10'], undefined, 200));
  t.regex(err!.message, /^run sleep 10: no exit within 200 ms$/);
  t.true(Date.now() - started < 5000);
});
