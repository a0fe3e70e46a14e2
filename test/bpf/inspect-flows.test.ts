// `netfence inspect` against real pinned maps: a small state is compiled and written into
// maps pinned under a private bpffs root, and the CLI decodes them back with names.
// (`netfence flows` follows a running agent: test/e2e/agent-lifecycle.test.ts.)
import test from 'ava';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { namesFilePath, namesFromCompile, readNamesFile, writeNamesFile } from '../../src/agent/names-file';
import type { InspectReport } from '../../src/cli/inspect';
import { compile } from '../../src/compile';
import { loadDatapath, mapFd, updateConfig, type Datapath } from '../../src/datapath/loader';
import { native } from '../../src/datapath/native';
import { snapshotFromYaml } from '../../src/sources/directory';
import { manyPoliciesYaml, manyPolicyCidr } from '../helpers/many-policies';

const run = promisify(execFile);
const cli = path.resolve(__dirname, '../../src/cli/main.js');
const root = `/sys/fs/bpf/nf-inspect-${process.pid}`;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nf-inspect-'));
const namesFile = path.join(tmp, 'names.json');

/** 300 NetworkPolicies selecting shop/big: its ingress table spans 2 chunks. */
const BIG_POLICIES = manyPoliciesYaml(300, 'shop', 'big', { app: 'big' });

const STATE = `
apiVersion: v1
kind: Namespace
metadata: { name: shop }
---
apiVersion: v1
kind: Pod
metadata: { name: web, namespace: shop, labels: { app: web } }
spec: { nodeName: node-1, containers: [{ name: c, ports: [{ containerPort: 80 }] }] }
status: { podIPs: [{ ip: 10.244.1.10 }] }
---
apiVersion: v1
kind: Pod
metadata: { name: client, namespace: shop, labels: { app: client } }
spec: { nodeName: node-1, containers: [{ name: c }] }
status: { podIPs: [{ ip: 10.244.1.20 }] }
---
apiVersion: v1
kind: Pod
metadata: { name: intruder, namespace: shop, labels: { app: intruder } }
spec: { nodeName: node-1, containers: [{ name: c }] }
status: { podIPs: [{ ip: 10.244.1.30 }] }
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: web-from-client, namespace: shop }
spec:
  podSelector: { matchLabels: { app: web } }
  ingress:
    - from: [{ podSelector: { matchLabels: { app: client } } }]
      ports: [{ port: 80 }]
---
apiVersion: v1
kind: Pod
metadata: { name: big, namespace: shop, labels: { app: big } }
spec: { nodeName: node-1, containers: [{ name: c }] }
status: { podIPs: [{ ip: 10.244.1.40 }] }
${BIG_POLICIES}`;

let dp: Datapath;

test.before(async () => {
  dp = loadDatapath(native, { bpffsRoot: root });
  const snapshot = snapshotFromYaml(STATE);
  if (snapshot.errors.length) throw new Error(JSON.stringify(snapshot.errors));
  // web's host-side interface stands in as loopback: BPF_PROG_TEST_RUN runs skbs on ifindex 1.
  const compiled = compile(snapshot, 'node-1', [
    { ifname: 'lo', ifindex: 1, kind: 'pod', pod: 'shop/web' },
    { ifname: 'big0', ifindex: 2, kind: 'pod', pod: 'shop/big' },
  ]);
  if (compiled.errors.length) throw new Error(compiled.errors.join('; '));
  for (const [map, content] of Object.entries(compiled.maps)) {
    for (const { key, value } of content.values()) native.mapUpdate(mapFd(dp, map), key, value);
  }
  updateConfig(native, dp, { eventsPerSec: 100 });
  await writeNamesFile(
    namesFile,
    namesFromCompile(compiled, snapshot, { bpffsRoot: root, node: 'node-1', generation: 7 }),
  );
});

test.after.always(() => {
  dp?.close();
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('the names file round-trips and lives under /run/netfence/<root hash>/', (t) => {
  const names = readNamesFile(namesFile);
  t.is(names.node, 'node-1');
  t.is(names.generation, 7);
  t.true(names.pods.some((p) => p.ip === '10.244.1.30' && p.pod_name === 'intruder'));
  t.regex(namesFilePath(root), /^\/run\/netfence\/[0-9a-f]{16}\/names\.json$/);
  t.not(namesFilePath(root), namesFilePath(`${root}-other`));
  fs.writeFileSync(path.join(tmp, 'v0.json'), '{"version":0}');
  t.throws(() => readNamesFile(path.join(tmp, 'v0.json')), { message: /version: expected 1, got 0/ });
});

test('inspect decodes endpoints, tables, rules and identities with names', async (t) => {
  const { stdout } = await run(process.execPath, [
    cli,
    'inspect',
    '--json',
    '--bpffs-root',
    root,
    '--names',
    namesFile,
  ]);
  const r = JSON.parse(stdout) as InspectReport;
  t.is(r.names?.generation, 7);
  const ep = r.endpoints.find((e) => e.ifindex === 1)!;
  t.like(ep, { ifname: 'lo', pod: 'shop/web', flags: ['pod'] });
  t.not(ep.ingressTable, 0);
  const table = r.tables.find((x) => x.table === ep.ingressTable)!;
  t.deepEqual(table.usedBy, [1]);
  const allow = table.rules.find((x) => x.policy === 'NetworkPolicy shop/web-from-client' && x.action === 'allow')!;
  t.truthy(allow, JSON.stringify(table.rules));
  t.deepEqual(allow.ports, ['TCP/80']);
  t.true(allow.identities.length > 0);
  // The allowed peer identity is client's, and the identity map resolves client's address to it.
  const clientIdent = r.identities.find((i) => i.match === '10.244.1.20')!;
  t.true(allow.identities.some((i) => i.id === clientIdent.id));
  t.false(allow.identities.some((i) => i.id === r.identities.find((x) => x.match === '10.244.1.30')?.id));
  t.true(
    table.rules.some((x) => x.action === 'deny' && x.index > allow.index),
    'isolation deny after the allow',
  );
  t.is(r.config?.eventsPerSec, 100);

  // shop/big: 301 rules (no Node object: no node-local rule) in 2 chunks; the rules of chunk 1 get their peers and ports by global index
  const big = r.endpoints.find((e) => e.ifindex === 2)!;
  t.like(big, { pod: 'shop/big', ingressChunks: 2, egressChunks: 0 });
  const bigRules = r.tables.find((x) => x.table === big.ingressTable)!.rules;
  t.deepEqual(
    bigRules.map((x) => x.index),
    Array.from({ length: 301 }, (_, i) => i),
  );
  for (const rule of [bigRules[0], bigRules[255], bigRules[256], bigRules[299]]) {
    const i = Number(/^NetworkPolicy shop\/big(\d+)$/.exec(rule.policy ?? '')?.[1]);
    t.like(
      rule,
      { action: 'allow', cidrs: [manyPolicyCidr(i)], ports: [`TCP/${1000 + i}`] },
      `rule ${rule.index}: ${rule.policy}`,
    );
  }
  // the isolation deny is in the bitmap of every prefix of its chunk's trie, and only of those
  const chunk1 = bigRules.slice(256, 300).flatMap((x) => x.cidrs);
  t.like(bigRules[300], { action: 'deny', cidrs: [...chunk1, '::/0'].sort() });
  t.true(bigRules[300].ports.includes('any'));

  const text = (await run(process.execPath, [cli, 'inspect', '--bpffs-root', root, '--names', namesFile])).stdout;
  t.regex(text, /1 lo .* shop\/web/);
  t.regex(text, /2 big0 .* ingress=\d+ \(2 chunks\) egress=0 .* shop\/big/);
  t.regex(text, /allow NetworkPolicy shop\/web-from-client .*ports: TCP\/80/);
});

test('inspect names a root without pins', async (t) => {
  const err = await t.throwsAsync(run(process.execPath, [cli, 'inspect', '--bpffs-root', path.join(tmp, 'nothing')]));
  t.regex((err as unknown as { stderr: string }).stderr, /no pinned netfence maps/);
});
