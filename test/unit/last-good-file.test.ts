// The agent's last-good file: a store saved after an apply loads in a new process with every
// last valid version (a bad edit made while the agent was down keeps the old rules), it is
// rewritten only when the store changed, and a file that is damaged, edited, from another
// version or unreadable is ignored with a warning naming it: the agent starts empty.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LastGoodFile, lastGoodFilePath } from '../../src/agent/last-good-file';
import { namesFilePath } from '../../src/agent/names-file';
import { LastGood } from '../../src/model/last-good';
import type { Snapshot } from '../../src/model/types';
import { loadStateDir } from '../../src/sources/directory';

const NS = 'apiVersion: v1\nkind: Namespace\nmetadata: { name: demo }\n';
const np = (cidr: string) =>
  `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: web, namespace: demo }\nspec:\n  podSelector: {}\n  ingress: [{ from: [{ ipBlock: { cidr: ${cidr} } }] }]\n`;
const cidrs = (s: Snapshot): string[] =>
  s.policies
    .filter((p) => p.ref.name === 'web')
    .flatMap((p) => p.rules.flatMap((r) => r.peers.map((x) => (x.kind === 'cidr' ? x.cidr : x.kind))));

function setup(t: { teardown(fn: () => void): void }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nf-last-good-file-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const state = path.join(dir, 'state');
  fs.mkdirSync(state);
  const load = (web: string): Snapshot => {
    fs.writeFileSync(path.join(state, 'base.yaml'), NS);
    fs.writeFileSync(path.join(state, 'web.yaml'), np(web));
    return loadStateDir(state);
  };
  return { dir, file: path.join(dir, 'run', 'last-good.json'), load };
}

test('lives beside the names file', (t) => {
  t.is(lastGoodFilePath('/sys/fs/bpf/x'), path.join(path.dirname(namesFilePath('/sys/fs/bpf/x')), 'last-good.json'));
});

test('round trip: a saved store loads with its last valid versions; written only when it changed', async (t) => {
  const { file, load } = setup(t);
  const saver = new LastGoodFile(file);
  t.deepEqual(saver.load().warning, undefined, 'no file yet: first start, no warning');
  const store = new LastGood();
  store.merge(load('10.0.0.0/8'));
  t.true(await saver.save(store), 'first save writes (and creates the directory)');
  t.deepEqual(fs.readdirSync(path.dirname(file)), ['last-good.json'], 'no temporary file left');
  const mtime = fs.statSync(file).mtimeMs;
  t.false(await saver.save(store), 'no merge since: nothing to write');
  store.merge(load('10.0.0.0/8'));
  t.false(await saver.save(store), 'merged the same objects: same content, not rewritten');
  t.is(fs.statSync(file).mtimeMs, mtime);

  // a new process: the edit made while it was down is rejected, the saved version enforced
  const restarted = new LastGoodFile(file).load();
  t.is(restarted.warning, undefined);
  const merged = restarted.store.merge(load('10.0.0.0/33'));
  t.deepEqual(merged.kept, ['NetworkPolicy demo/web']);
  t.deepEqual(cidrs(merged.snapshot), ['10.0.0.0/8']);

  store.merge(load('10.3.0.0/16'));
  t.true(await saver.save(store), 'a changed store is written');
  t.deepEqual(cidrs(new LastGoodFile(file).load().store.merge(load('nope')).snapshot), ['10.3.0.0/16']);
});

const corrupt: [string, (text: string) => string, RegExp][] = [
  ['truncated', (x) => x.slice(0, x.length / 2), /JSON/],
  ['not JSON at all', () => '\0\0\0', /JSON/],
  ['null', () => 'null', /null/],
  ['another version', (x) => x.replace('"version":1', '"version":2'), /version: expected 1, got 2/],
  ['without version', (x) => x.replace('"version":1,', ''), /version: expected 1, got undefined/],
  ['edited data', (x) => x.replace('10.0.0.0/8', '0.0.0.0/0'), /sha256: does not match/],
  ['without data', () => '{"version":1,"sha256":"x"}', /sha256: does not match/],
];

for (const [name, damage, cause] of corrupt) {
  test(`a damaged file (${name}) is ignored with a warning naming it`, async (t) => {
    const { file, load } = setup(t);
    const store = new LastGood();
    store.merge(load('10.0.0.0/8'));
    await new LastGoodFile(file).save(store);
    fs.writeFileSync(file, damage(fs.readFileSync(file, 'utf8')));
    const loaded = new LastGoodFile(file).load();
    t.regex(loaded.warning ?? '', new RegExp(`^load last-good file ${file}: `));
    t.regex(loaded.warning ?? '', cause);
    const merged = loaded.store.merge(load('10.0.0.0/33'));
    t.deepEqual(merged.kept, [], 'an empty store: nothing kept');
    t.deepEqual(cidrs(merged.snapshot), []);
  });
}

test('a file that cannot be read is ignored with a warning; saving replaces it', async (t) => {
  const { file, load } = setup(t);
  fs.mkdirSync(file, { recursive: true });
  const saver = new LastGoodFile(file);
  t.regex(saver.load().warning ?? '', /EISDIR/);
  fs.rmdirSync(file);
  const store = new LastGood();
  store.merge(load('10.0.0.0/8'));
  t.true(await saver.save(store));
  t.is(new LastGoodFile(file).load().warning, undefined);
});
