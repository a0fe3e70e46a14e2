// DirectorySource: the first snapshot at start, named by the content hash; a change is a
// new snapshot with a new version; a rewrite with the same content is none; nothing
// arrives after stop().
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import type { Snapshot } from '../../src/model/types';
import { DirectorySource } from '../../src/sources/directory-source';
import { stateDirHash } from '../../src/sources/state-hash';

const ns = (name: string) => `apiVersion: v1\nkind: Namespace\nmetadata: { name: ${name} }\n`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('snapshots follow content changes, one per version', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nf-dirsource-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'a.yaml'), ns('one'));
  const got: { snapshot: Snapshot; version: string }[] = [];
  const source = new DirectorySource(dir, { log: pino({ level: 'silent' }), debounceMs: 20, resyncMs: 50 });
  await source.start((snapshot, version) => got.push({ snapshot, version }));
  t.teardown(() => source.stop());
  t.is(got.length, 1, 'the first snapshot is delivered during start');
  t.is(got[0].version, await stateDirHash(dir));
  t.deepEqual(
    got[0].snapshot.namespaces.map((n) => n.name),
    ['one'],
  );

  fs.mkdirSync(path.join(dir, 'sub'));
  fs.writeFileSync(path.join(dir, 'sub', 'b.yaml'), ns('two'));
  for (const deadline = Date.now() + 5000; got.length < 2 && Date.now() < deadline;) await sleep(20);
  t.is(got.length, 2);
  t.deepEqual(got[1].snapshot.namespaces.map((n) => n.name).sort(), ['one', 'two']);
  t.is(got[1].version, await stateDirHash(dir));

  fs.writeFileSync(path.join(dir, 'a.yaml'), ns('one')); // same bytes: events, resyncs, no snapshot
  await sleep(300);
  t.is(got.length, 2);

  await source.stop();
  fs.writeFileSync(path.join(dir, 'a.yaml'), ns('three'));
  await sleep(200);
  t.is(got.length, 2, 'nothing after stop');
});

test('a missing directory fails the start naming it', async (t) => {
  const source = new DirectorySource('/nonexistent/nf-state', { log: pino({ level: 'silent' }) });
  await t.throwsAsync(
    source.start(() => undefined),
    { message: 'watch state directory /nonexistent/nf-state: does not exist' },
  );
});
