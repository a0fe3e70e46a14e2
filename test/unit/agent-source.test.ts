// `netfence agent` source selection: exactly one state source (--state, --kubeconfig or
// in-cluster), --config only with the Kubernetes source, clear errors otherwise; the
// settings at start come from netfence.yaml or the --config file.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { chooseSource, createAgentSource } from '../../src/cli/agent-source';
import { DirectorySource } from '../../src/sources/directory-source';
import { KubernetesSource } from '../../src/sources/kubernetes';

const IN_CLUSTER = { KUBERNETES_SERVICE_HOST: '10.96.0.1' };
const log = pino({ level: 'silent' });

test('one source: --state, --kubeconfig, or in-cluster credentials', (t) => {
  t.deepEqual(
    chooseSource({ state: '/s' }, IN_CLUSTER),
    { kind: 'directory', dir: '/s' },
    '--state wins over the in-cluster environment',
  );
  t.deepEqual(chooseSource({ kubeconfig: '/k', config: '/c' }, {}), {
    kind: 'kubernetes',
    kubeconfig: '/k',
    configFile: '/c',
  });
  t.deepEqual(chooseSource({ config: '/c' }, IN_CLUSTER), { kind: 'kubernetes', configFile: '/c' });
  t.deepEqual(chooseSource({}, IN_CLUSTER), { kind: 'kubernetes' });
});

test('no source, two sources, or --config with --state: clear errors', (t) => {
  t.throws(() => chooseSource({}, {}), {
    message: /^start agent: no state source: give --state DIR or --kubeconfig FILE, or run in a cluster/,
  });
  t.throws(() => chooseSource({ config: '/c' }, {}), { message: /no state source/ });
  t.throws(() => chooseSource({ state: '/s', kubeconfig: '/k' }, {}), {
    message: /^start agent: --state and --kubeconfig: give one state source/,
  });
  t.throws(() => chooseSource({ state: '/s', config: '/c' }, {}), {
    message: /^start agent: --config: only with the Kubernetes source/,
  });
});

function tmpdir(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nf-agent-source-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const CONFIG =
  'apiVersion: netfence.io/v1alpha1\nkind: NetfenceConfig\nmetadata: { name: netfence }\nspec: { metricsAddress: "127.0.0.1:9555", bpffsRoot: /sys/fs/bpf/nf-x }\n';
const KUBECONFIG = `apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: "http://127.0.0.1:1" } }]
users: [{ name: u, user: { token: t } }]
contexts: [{ name: c, context: { cluster: c, user: u } }]
current-context: c
`;

test('settings at start: netfence.yaml of the state directory, or the --config file', async (t) => {
  const dir = tmpdir(t);
  fs.writeFileSync(path.join(dir, 'netfence.yaml'), CONFIG);
  const d = await createAgentSource({ kind: 'directory', dir }, { log, resyncMs: 1000 });
  t.true(d.source instanceof DirectorySource);
  t.is(d.config.metricsAddress, '127.0.0.1:9555');

  fs.writeFileSync(path.join(dir, 'kubeconfig'), KUBECONFIG);
  const k = await createAgentSource(
    { kind: 'kubernetes', kubeconfig: path.join(dir, 'kubeconfig'), configFile: path.join(dir, 'netfence.yaml') },
    { log, resyncMs: 1000 },
  );
  t.true(k.source instanceof KubernetesSource);
  t.is(k.config.bpffsRoot, '/sys/fs/bpf/nf-x');
  t.regex(k.describe, /^kubernetes API \(.*kubeconfig\)$/);
});

test('a bad --config or kubeconfig fails the start naming the file', async (t) => {
  const dir = tmpdir(t);
  const bad = path.join(dir, 'bad.yaml');
  fs.writeFileSync(bad, CONFIG.replace('"127.0.0.1:9555"', '[1]'));
  fs.writeFileSync(path.join(dir, 'kubeconfig'), KUBECONFIG);
  await t.throwsAsync(
    createAgentSource(
      { kind: 'kubernetes', kubeconfig: path.join(dir, 'kubeconfig'), configFile: bad },
      { log, resyncMs: 1000 },
    ),
    {
      message: new RegExp(`^read config ${bad}: NetfenceConfig netfence spec.metricsAddress`),
    },
  );
  await t.throwsAsync(
    createAgentSource({ kind: 'kubernetes', kubeconfig: path.join(dir, 'missing') }, { log, resyncMs: 1000 }),
    {
      message: new RegExp(`^load kubeconfig ${dir}/missing: `),
    },
  );
  await t.throwsAsync(
    createAgentSource({ kind: 'kubernetes', configFile: path.join(dir, 'none.yaml') }, { log, resyncMs: 1000 }),
    {
      message: /^read config .*none\.yaml: ENOENT/,
    },
  );
});
