// The CNI sandbox store: keyed by (pod, interface), a DEL only for the current container ID
// of that interface, written atomically to its file and read back by a new store (a
// restarted agent), the previous agent's pod-keyed file included.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Sandboxes, sandboxesFilePath, type Sandbox } from '../../src/agent/sandboxes';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nf-sandboxes-'));
test.after.always(() => fs.rmSync(tmp, { recursive: true, force: true }));

const sandbox = (containerId: string, ips: string[], extra: Partial<Sandbox> = {}): Sandbox => ({
  pod: 'demo/web',
  containerId,
  ifName: 'eth0',
  netns: `/run/netns/${containerId}`,
  ips,
  ...extra,
});

test('the file lives in the run directory of the bpffs root, beside the names file', (t) => {
  t.regex(
    sandboxesFilePath('/sys/fs/bpf/netfence', '/run/netfence'),
    /^\/run\/netfence\/[0-9a-f]{16}\/sandboxes\.json$/,
  );
});

test('a re-created sandbox replaces the old one; a late DEL of the old container ID changes nothing; the current one is forgotten', async (t) => {
  const file = path.join(tmp, 'a', 'sandboxes.json');
  const store = new Sandboxes(file);
  await store.set(sandbox('c1', ['10.244.0.5'], { hostIf: { name: 'veth1', ifindex: 7 } }));
  await store.set(sandbox('c2', ['10.244.0.9']));
  t.is(await store.delete('demo/web', 'eth0', 'c1'), 'stale');
  t.like(store.get('demo/web', 'eth0'), { containerId: 'c2', ips: ['10.244.0.9'] });
  t.is(await store.delete('demo/other', 'eth0', 'c2'), 'unknown');
  t.is(await store.delete('demo/web', 'eth0', 'c2'), 'deleted');
  t.is(store.get('demo/web', 'eth0'), undefined);
  const reread = new Sandboxes(file);
  t.deepEqual(reread.load(), {});
  t.is(reread.size, 0, 'the DEL is on disk too');
});

test('a new store (restarted agent) reads what the last one wrote, concurrent writes ending with the newest', async (t) => {
  const file = path.join(tmp, 'b', 'sandboxes.json');
  const store = new Sandboxes(file);
  await Promise.all([
    store.set(sandbox('c1', ['10.244.0.5'])),
    store.set(sandbox('c2', ['10.244.0.6'], { hostIf: { name: 'veth2', ifindex: 8 } })),
    store.set(sandbox('c3', ['10.244.0.7'], { pod: 'demo/db' })),
  ]);
  const reread = new Sandboxes(file);
  t.deepEqual(reread.load(), {});
  t.deepEqual(reread.all(), store.all());
  t.like(reread.get('demo/web', 'eth0'), { containerId: 'c2', hostIf: { name: 'veth2', ifindex: 8 } });
  t.deepEqual(fs.readdirSync(path.dirname(file)), ['sandboxes.json'], 'no temporary file left');
});

test('two interfaces of one pod (Multus: eth0 and net1) are kept apart; a DEL of one, current or late, leaves the other', async (t) => {
  const file = path.join(tmp, 'e', 'sandboxes.json');
  const store = new Sandboxes(file);
  await store.set(sandbox('c1', ['10.244.0.5'], { network: 'routed', hostIf: { name: 'veth1', ifindex: 7 } }));
  await store.set(
    sandbox('c1', ['10.10.0.5'], { ifName: 'net1', network: 'blue', hostIf: { name: 'veth2', ifindex: 8 } }),
  );
  t.is(store.size, 2);
  t.like(store.get('demo/web', 'eth0'), { ips: ['10.244.0.5'], network: 'routed' });
  t.like(store.get('demo/web', 'net1'), { ips: ['10.10.0.5'], network: 'blue' });
  t.is(await store.delete('demo/web', 'net1', 'c0'), 'stale', 'a late DEL of an older container on net1');
  t.is(store.size, 2);
  t.is(await store.delete('demo/web', 'net1', 'c1'), 'deleted');
  t.like(store.get('demo/web', 'eth0'), { containerId: 'c1', ips: ['10.244.0.5'] }, 'eth0 stays');
  const reread = new Sandboxes(file);
  t.deepEqual(reread.load(), {});
  t.deepEqual(
    reread.all().map((s) => s.ifName),
    ['eth0'],
  );
  t.is(JSON.parse(fs.readFileSync(file, 'utf8')).version, 2);
});

test("the previous agent's file (version 1, one sandbox per pod, no network) loads", (t) => {
  const file = path.join(tmp, 'f', 'sandboxes.json');
  fs.mkdirSync(path.dirname(file));
  const old = {
    pod: 'demo/web',
    containerId: 'c1',
    ifName: 'eth0',
    netns: '/run/netns/c1',
    hostIf: { name: 'veth1', ifindex: 7 },
    ips: ['10.244.0.5'],
  };
  fs.writeFileSync(
    file,
    JSON.stringify({ version: 1, sandboxes: [old, { ...old, pod: 'demo/db', containerId: 'c2' }] }),
  );
  const store = new Sandboxes(file);
  t.deepEqual(store.load(), {});
  t.deepEqual(store.get('demo/web', 'eth0'), old);
  t.like(store.get('demo/db', 'eth0'), { containerId: 'c2' });
  t.is(store.get('demo/web', 'eth0')?.network, undefined);
});

test('sandboxes said to be gone are pruned', async (t) => {
  const store = new Sandboxes(path.join(tmp, 'c', 'sandboxes.json'));
  await store.set(sandbox('c1', [], { pod: 'demo/alive' }));
  await store.set(sandbox('c2', [], { pod: 'demo/dead' }));
  const gone = await store.prune((s) => s.netns !== '/run/netns/c1');
  t.deepEqual(
    gone.map((s) => s.pod),
    ['demo/dead'],
  );
  t.deepEqual(
    store.all().map((s) => s.pod),
    ['demo/alive'],
  );
});

test('a missing file is a first start; a damaged or foreign one is ignored with a warning naming file and field', (t) => {
  const file = path.join(tmp, 'd', 'sandboxes.json');
  t.deepEqual(new Sandboxes(file).load(), {});
  fs.mkdirSync(path.dirname(file));
  const cases: [string, RegExp][] = [
    ['{"version":1,"sandboxes":[{"pod":"demo/web"', /JSON/],
    ['{"version":3,"sandboxes":[]}', /version: expected 1 or 2, got 3/],
    [
      '{"version":2,"sandboxes":[{"pod":"demo/web","containerId":"c","ifName":"net1","network":"","netns":"/x","ips":[]}]}',
      /sandboxes\[0\]\.network: must be a non-empty string/,
    ],
    [
      '{"version":1,"sandboxes":[{"pod":"demo/web","containerId":"","ifName":"eth0","netns":"/x","ips":[]}]}',
      /sandboxes\[0\]\.containerId: must be a non-empty string/,
    ],
    [
      '{"version":1,"sandboxes":[{"pod":"demo/web","containerId":"c","ifName":"eth0","netns":"/x","ips":[1]}]}',
      /sandboxes\[0\]\.ips: must be a list of strings/,
    ],
    [
      '{"version":1,"sandboxes":[{"pod":"demo/web","containerId":"c","ifName":"eth0","netns":"/x","ips":[],"hostIf":{"name":"v"}}]}',
      /sandboxes\[0\]\.hostIf: must be/,
    ],
  ];
  for (const [text, error] of cases) {
    fs.writeFileSync(file, text);
    const store = new Sandboxes(file);
    const { warning } = store.load();
    t.regex(warning ?? '', new RegExp(`^load sandboxes file ${file}: `), text);
    t.regex(warning ?? '', error, text);
    t.is(store.size, 0);
  }
});
