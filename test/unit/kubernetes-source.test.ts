// The Kubernetes API source against an in-process apiserver speaking the real list/watch
// protocol, driven by the real @kubernetes/client-node client from a kubeconfig file.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import type { Snapshot } from '../../src/model/types';
import { collectionPath, makeLister } from '../../src/sources/kubernetes-resources';
import { parseYamlText } from '../../src/sources/directory';
import {
  apiSnapshotBuilder,
  createKubernetesSource,
  KubernetesSource,
  loadKubeConfig,
  WATCHED_RESOURCES,
  type KubeObject,
} from '../../src/sources/kubernetes';
import { FakeApiServer, type Obj } from '../helpers/fake-apiserver';

const PODS = '/api/v1/pods';
const NODES = '/api/v1/nodes';
const NETPOL = '/apis/networking.k8s.io/v1/networkpolicies';
const ALL_PATHS = WATCHED_RESOURCES.map(collectionPath);

interface Seen {
  objects: KubeObject[];
}

const pod = (ns: string, name: string, ip: string): Obj => ({
  metadata: { namespace: ns, name, labels: { app: name } },
  spec: { nodeName: 'n1', containers: [{ name: 'c', ports: [{ containerPort: 80, protocol: 'TCP' }] }] },
  status: { podIPs: [{ ip }] },
});

function writeKubeconfig(url: string): { dir: string; file: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nf-kubeconfig-'));
  const file = path.join(dir, 'kubeconfig');
  fs.writeFileSync(
    file,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters: [{name: fake, cluster: {server: "' + url + '", insecure-skip-tls-verify: true}}]',
      'users: [{name: u, user: {token: t0k3n}}]',
      'contexts: [{name: c, context: {cluster: fake, user: u}}]',
      'current-context: c',
      '',
    ].join('\n'),
  );
  return { dir, file };
}

interface SetupOptions {
  paths?: string[];
  timing?: object;
  /** A server the test prepared (held lists); no seeding then. */
  server?: FakeApiServer;
}

async function setup(t: { teardown(fn: () => unknown): void }, opts: SetupOptions = {}) {
  const server = opts.server ?? new FakeApiServer(opts.paths ?? ALL_PATHS);
  if (!opts.server) {
    const seed: Array<[string, Obj]> = [
      ['/api/v1/namespaces', { metadata: { name: 'default', labels: { 'kubernetes.io/metadata.name': 'default' } } }],
      [
        NODES,
        {
          metadata: { name: 'n1', labels: {} },
          status: { addresses: [{ type: 'InternalIP', address: '192.168.0.1' }] },
        },
      ],
      [PODS, pod('default', 'a', '10.244.0.2')],
    ];
    for (const [p, o] of seed) if (server.serves(p)) server.put(p, o);
  }
  const url = await server.listen();
  const { dir, file } = writeKubeconfig(url);
  const seen: Seen[] = [];
  const waiters: Array<() => void> = [];
  const config = parseYamlText(
    'apiVersion: netfence.io/v1alpha1\nkind: NetfenceConfig\nmetadata: {name: netfence}\nspec: {}\n',
    'netfence.yaml',
  );
  const build = apiSnapshotBuilder(config.objects);
  const source = new KubernetesSource({
    kubeConfig: loadKubeConfig(file),
    log: pino({ level: 'silent' }),
    debounceMs: 30,
    maxDelayMs: 300,
    timing: { backoffInitialMs: 20, backoffMaxMs: 200, watchTimeoutSeconds: 60, ...opts.timing },
    // Records what the source hands to the (real) snapshot builder.
    buildSnapshot: (objects) => {
      seen.push({ objects: [...objects] });
      for (const w of waiters.splice(0)) w();
      return build(objects);
    },
  });
  const delivered: Snapshot[] = [];
  await source.start((s) => delivered.push(s));
  t.teardown(async () => {
    await source.stop();
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const last = () => seen[seen.length - 1];
  /** Wait until the latest snapshot satisfies pred. */
  const until = async (pred: (s: Seen) => boolean, ms = 5000): Promise<Seen> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const s = last();
      if (s && pred(s)) return s;
      if (Date.now() > deadline) throw new Error(`timed out; last snapshot: ${JSON.stringify(s?.objects.map(id))}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 50);
      });
    }
  };
  return { server, source, seen, delivered, until };
}

const id = (o: KubeObject) => `${o.kind}:${o.metadata.namespace ? o.metadata.namespace + '/' : ''}${o.metadata.name}`;
const ids = (s: Seen) => s.objects.map(id);
const pods = (s: Seen) =>
  s.objects
    .filter((o) => o.kind === 'Pod')
    .map((o) => o.metadata.name)
    .sort();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function waitFor(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await sleep(20);
  }
}

test('the first snapshot holds every listed object in wire form, apiVersion and kind stamped', async (t) => {
  const env = await setup(t);
  const s = await env.until((x) => pods(x).length === 1);
  t.deepEqual(ids(s).sort(), ['Namespace:default', 'Node:n1', 'Pod:default/a']);
  const p = s.objects.find((o) => o.kind === 'Pod')!;
  t.is(p.apiVersion, 'v1');
  t.deepEqual((p.status as { podIPs: unknown }).podIPs, [{ ip: '10.244.0.2' }]);
  t.true(env.source.isSynced());
  t.is(env.delivered.length, env.seen.length);
  // Through the directory source's parsing: typed, validated objects.
  const snap = env.delivered[env.delivered.length - 1];
  t.deepEqual(snap.errors, []);
  t.deepEqual(
    snap.pods.map((p) => [p.namespace, p.name, p.ips, p.nodeName]),
    [['default', 'a', ['10.244.0.2'], 'n1']],
  );
  t.deepEqual(
    snap.nodes.map((n) => n.addresses),
    [['192.168.0.1']],
  );
});

test('a held list blocks every snapshot until it completes', async (t) => {
  const server = new FakeApiServer(ALL_PATHS);
  server.hold(NODES);
  server.put(NODES, { metadata: { name: 'n1' } });
  const env = await setup(t, { server });
  await waitFor(() => ALL_PATHS.every((p) => server.count(server.lists, p) >= 1), 'every resource listed');
  await sleep(300);
  t.is(env.seen.length, 0, 'snapshot emitted before nodes were listed');
  t.false(env.source.isSynced());
  server.release(NODES);
  const s = await env.until((x) => ids(x).includes('Node:n1'));
  t.true(s.objects.length >= 1);
  t.true(env.source.isSynced());
});

test('adds, updates and deletes arrive, bursts coalesce into few snapshots', async (t) => {
  const env = await setup(t);
  await env.until((x) => pods(x).length === 1);
  const before = env.seen.length;
  for (let i = 0; i < 20; i++) env.server.put(PODS, pod('default', `p${i}`, `10.244.1.${i}`));
  const s = await env.until((x) => pods(x).length === 21);
  t.true(env.seen.length - before <= 4, `20 adds produced ${env.seen.length - before} snapshots`);
  t.truthy(s);

  env.server.put(PODS, {
    ...pod('default', 'p3', '10.244.9.9'),
    metadata: { namespace: 'default', name: 'p3', labels: { app: 'changed' } },
  });
  env.server.remove(PODS, 'p4', 'default');
  env.server.put(NETPOL, {
    metadata: { namespace: 'default', name: 'deny' },
    spec: { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] },
  });
  const s2 = await env.until((x) => !pods(x).includes('p4') && ids(x).includes('NetworkPolicy:default/deny'));
  const p3 = s2.objects.find((o) => o.metadata.name === 'p3')!;
  t.deepEqual((p3.metadata.labels as Record<string, string>).app, 'changed');
  const np = s2.objects.find((o) => o.kind === 'NetworkPolicy')!;
  t.is(np.apiVersion, 'networking.k8s.io/v1');
  // Wire form, not the client's model form (`_from`).
  t.deepEqual((np.spec as { ingress: unknown[] }).ingress, [{ from: [{ podSelector: {} }] }]);
  const snap = env.delivered[env.delivered.length - 1];
  t.deepEqual(snap.errors, []);
  t.true(
    snap.policies.some(
      (p) => p.ref.kind === 'NetworkPolicy' && p.ref.name === 'deny' && p.isolates.includes('ingress'),
    ),
  );
  // Watches asked for bookmarks and a server-side timeout.
  t.true(
    env.server.watchQueries.every(
      (q) => q.get('allowWatchBookmarks') === 'true' && Number(q.get('timeoutSeconds')) >= 60,
    ),
  );
});

test('410 Gone as an ERROR event forces a relist and a consistent snapshot', async (t) => {
  const env = await setup(t);
  env.server.put(PODS, pod('default', 'b', '10.244.0.3'));
  await env.until((x) => pods(x).join() === 'a,b');
  const lists = env.server.count(env.server.lists, PODS);
  // Changes the client never hears about, then history is compacted and the watch expires.
  env.server.remove(PODS, 'b', 'default', true);
  env.server.put(PODS, pod('default', 'c', '10.244.0.4'), true);
  env.server.compact();
  env.server.expireWatches(PODS);
  const s = await env.until((x) => pods(x).join() === 'a,c');
  t.true(env.server.count(env.server.lists, PODS) > lists, 'no relist');
  t.deepEqual(pods(s), ['a', 'c']);
});

test('410 Gone as HTTP status on reconnect forces a relist', async (t) => {
  const env = await setup(t);
  env.server.goneAs = 'http';
  await env.until((x) => pods(x).length === 1);
  const lists = env.server.count(env.server.lists, PODS);
  env.server.put(PODS, pod('default', 'quiet', '10.244.0.5'), true);
  env.server.compact();
  env.server.dropWatches(PODS);
  await env.until((x) => pods(x).join() === 'a,quiet');
  t.true(env.server.count(env.server.lists, PODS) > lists);
});

test('a dropped stream reconnects from its resourceVersion without a relist', async (t) => {
  const env = await setup(t);
  await env.until((x) => pods(x).length === 1);
  const lists = env.server.count(env.server.lists, PODS);
  const watches = env.server.count(env.server.watches, PODS);
  env.server.dropWatches(PODS);
  env.server.put(PODS, pod('default', 'late', '10.244.0.6'));
  await env.until((x) => pods(x).join() === 'a,late');
  t.true(env.server.count(env.server.watches, PODS) > watches, 'no new watch');
  t.is(env.server.count(env.server.lists, PODS), lists, 'reconnect relisted');
  // And the new stream is live.
  env.server.put(PODS, pod('default', 'later', '10.244.0.7'));
  await env.until((x) => pods(x).includes('later'));
  t.pass();
});

test('bookmarks keep a quiet watch alive; a stalled watch is replaced by the watchdog', async (t) => {
  // The watchdog is 15 bookmark periods long: a loaded 2-core CI host stalls timers for
  // a second or more, which must not read as a silent stream.
  const env = await setup(t, { timing: { watchdogMs: 3000 } });
  await env.until((x) => pods(x).length === 1);
  const lists = env.server.count(env.server.lists, PODS);
  const timer = setInterval(() => env.server.bookmark(), 200);
  await sleep(4500);
  clearInterval(timer);
  t.is(env.server.count(env.server.lists, PODS), lists, 'watchdog fired despite bookmarks');

  // Now the pods stream goes silent: new watches get headers and nothing else.
  env.server.stalled.add(PODS);
  env.server.dropWatches(PODS);
  env.server.put(PODS, pod('default', 'unseen', '10.244.0.8'));
  const bookmarks = setInterval(() => env.server.bookmark(), 200); // other resources stay alive
  t.teardown(() => clearInterval(bookmarks));
  await env.until((x) => pods(x).includes('unseen'), 12000);
  t.true(env.server.count(env.server.lists, PODS) > lists, 'watchdog did not relist');
});

test('an optional API that is not served counts as synced and empty', async (t) => {
  const missing = '/apis/k8s.cni.cncf.io/v1beta1/multi-networkpolicies';
  const env = await setup(t, { paths: ALL_PATHS.filter((p) => p !== missing) });
  const s = await env.until((x) => pods(x).length === 1);
  t.false(s.objects.some((o) => o.kind === 'MultiNetworkPolicy'));
  const st = env.source.status().find((r) => r.resource === 'multi-networkpolicies.k8s.cni.cncf.io')!;
  t.true(st.synced && st.absent);
});

test('a required API that fails keeps the source unsynced and retries', async (t) => {
  const env = await setup(t, { paths: ALL_PATHS.filter((p) => p !== NODES) });
  await waitFor(() => env.server.count(env.server.lists, NODES) >= 3, 'failed list retried');
  t.is(env.seen.length, 0);
  t.false(env.source.isSynced());
  t.false(env.source.status().find((r) => r.resource === 'nodes')!.synced);
});

test('createKubernetesSource: kubeconfig file plus the agent config file', async (t) => {
  const server = new FakeApiServer(ALL_PATHS);
  server.put(PODS, pod('default', 'a', '10.244.0.2'));
  const { dir, file } = writeKubeconfig(await server.listen());
  const configFile = path.join(dir, 'netfence.yaml');
  fs.writeFileSync(
    configFile,
    'apiVersion: netfence.io/v1alpha1\nkind: NetfenceConfig\nmetadata: {name: netfence}\nspec: {hostInterfaces: [ens5]}\n',
  );
  const source = createKubernetesSource({
    kubeconfig: file,
    configFile,
    log: pino({ level: 'silent' }),
    debounceMs: 20,
  });
  const first = new Promise<Snapshot>((resolve) => void source.start(resolve));
  t.teardown(async () => {
    await source.stop();
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const snap = await first;
  t.deepEqual(snap.config.hostInterfaces, ['ens5']);
  t.deepEqual(
    snap.pods.map((p) => p.name),
    ['a'],
  );
  t.throws(() => createKubernetesSource({ kubeconfig: path.join(dir, 'missing'), log: pino({ level: 'silent' }) }), {
    message: /^load kubeconfig .*missing: /,
  });
});

test('large collections are listed in pages and arrive whole', async (t) => {
  const server = new FakeApiServer(ALL_PATHS);
  for (let i = 0; i < 1100; i++)
    server.put(PODS, pod('default', `p${String(i).padStart(4, '0')}`, `10.244.${i >> 8}.${i & 255}`));
  server.put(NETPOL, { metadata: { namespace: 'default', name: 'np' }, spec: { podSelector: {} } });
  const env = await setup(t, { server });
  const s = await env.until((x) => pods(x).length === 1100);
  t.is(env.server.count(env.server.lists, PODS), 3, 'three pages of at most 500');
  t.is(new Set(pods(s)).size, 1100);
});

test('apiSnapshotBuilder decodes each object once: an unchanged object keeps its decoded form', (t) => {
  const build = apiSnapshotBuilder();
  const obj = (name: string, ip: string): KubeObject =>
    ({ apiVersion: 'v1', kind: 'Pod', ...pod('default', name, ip) }) as KubeObject;
  const a = obj('a', '10.244.0.2');
  const first = build([a, obj('b', '10.244.0.3')]);
  const second = build([a, obj('b', '10.244.0.4')]);
  t.is(second.pods[0], first.pods[0], 'the same object: decoded once');
  t.not(second.pods[1], first.pods[1]);
  t.deepEqual(second.pods[1].ips, ['10.244.0.4']);
});

test('a list hands each page on as it arrives, in order, before the list is whole', async (t) => {
  const server = new FakeApiServer([PODS]);
  for (let i = 0; i < 1100; i++)
    server.put(PODS, pod('default', `p${String(i).padStart(4, '0')}`, `10.244.${i >> 8}.${i & 255}`));
  const { dir, file } = writeKubeconfig(await server.listen());
  t.teardown(async () => {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const pages: (readonly KubeObject[])[] = [];
  const resource = WATCHED_RESOURCES.find((r) => collectionPath(r) === PODS)!;
  const list = await makeLister(loadKubeConfig(file), resource, (items) => pages.push(items))();
  t.deepEqual(
    pages.map((p) => p.length),
    [500, 500, 100],
  );
  t.deepEqual(pages.flat(), list.items, 'every item handed on once, in the list order');
});

test('apiSnapshotBuilder.prepare decodes ahead: the snapshot built later reads the object as prepared', (t) => {
  const build = apiSnapshotBuilder();
  const a = { apiVersion: 'v1', kind: 'Pod', ...pod('default', 'a', '10.244.0.2') } as KubeObject;
  build.prepare?.([a]);
  // Changed in place (a watcher replaces objects instead): only a decode now would see it.
  (a as unknown as { status: { podIPs: { ip: string }[] } }).status.podIPs[0].ip = '10.244.0.9';
  t.deepEqual(build([a]).pods[0].ips, ['10.244.0.2']);
});
