import test from 'ava';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  ParseCache,
  loadStateDir,
  loadStateDirAsync,
  loadStateDirConfigAsync,
  snapshotFromYaml,
} from '../../src/sources/directory';
import { formatValidationError } from '../../src/model/snapshot';
import { readStateDir } from '../../src/sources/state-files';
import { DEFAULT_REDIRECT_MARK, DEFAULT_REDIRECT_TABLE, defaultConfig } from '../../src/model/config';

const ROOT = path.resolve(__dirname, '../../..');

function tmpState(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nf-state-'));
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

const NS = (name: string) => `apiVersion: v1\nkind: Namespace\nmetadata: { name: ${name} }\n`;
const NP = (name: string, spec: string) =>
  `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: ${name}, namespace: a }\nspec:\n${spec}`;

test('the demo state loads without errors', (t) => {
  const s = loadStateDir(path.join(ROOT, 'examples/demo'));
  t.deepEqual(s.errors, []);
  t.deepEqual(s.warnings, []);
  t.is(s.pods.length, 5);
  t.is(s.nodes.length, 1);
  t.deepEqual(s.nodes[0].addresses, ['10.0.0.10', 'fd00:10::10']);
  t.deepEqual(s.config.serviceCIDRs, ['10.96.0.0/16', 'fd00:96::/112']);
  t.deepEqual(
    s.policies.map((p) => `${p.tier} ${p.ref.name}`),
    [
      'system privileged',
      'admin allow-monitoring',
      'admin deny-frontend-to-db',
      'netpol allow-frontend-to-api',
      'netpol allow-api-to-postgres',
      'netpol default-deny',
      'baseline baseline-isolate-backend',
    ],
  );
});

test('multi-document files, nested folders, .yml, and empty documents load; other files are ignored', (t) => {
  const dir = tmpState({
    'ns.yaml': `${NS('a')}---\n${NS('b')}---\n`,
    'sub/deeper/more.yml': `---\n${NS('c')}\n---\n`,
    'README.md': 'not yaml: [',
    'notes.txt': ': : :',
  });
  const s = loadStateDir(dir);
  t.deepEqual(s.errors, []);
  t.deepEqual(
    s.namespaces.map((n) => n.name),
    ['a', 'b', 'c'],
  );
  t.deepEqual(s.namespaces[0].labels, { 'kubernetes.io/metadata.name': 'a' });
});

test('a YAML syntax error names file and line; the other documents and files still load', (t) => {
  const dir = tmpState({ 'a.yaml': `${NS('a')}---\nkind: Namespace\nmetadata: { name: [oops\n`, 'b.yaml': NS('b') });
  const s = loadStateDir(dir);
  t.deepEqual(
    s.namespaces.map((n) => n.name),
    ['a', 'b'],
  );
  t.is(s.errors.length, 1);
  t.is(s.errors[0].file, path.join(dir, 'a.yaml'));
  t.true((s.errors[0].line ?? 0) >= 6);
  t.regex(s.errors[0].message, /^parse YAML: /);
});

test('a kind that may hide a policy is an error; ordinary manifest kinds are skipped with a warning', (t) => {
  const doc = (apiVersion: string, kind: string) =>
    `apiVersion: ${apiVersion}\nkind: ${kind}\nmetadata: { name: web, namespace: a }\n`;
  const errorCases: [string, string, string, RegExp][] = [
    [
      'networking.k8s.io/v2',
      'NetworkPolicy',
      'apiVersion',
      /does not read NetworkPolicy at apiVersion networking\.k8s\.io\/v2, only at networking\.k8s\.io\/v1/,
    ],
    ['extensions/v1beta1', 'NetworkPolicy', 'apiVersion', /only at networking\.k8s\.io\/v1/],
    [
      'networking.k8s.io/v1',
      'NetworkPolicyy',
      'kind',
      /unknown kind "NetworkPolicyy" in networking\.k8s\.io \(netfence reads networking\.k8s\.io\/v1 NetworkPolicy there\)/,
    ],
    [
      'policy.networking.k8s.io/v1alpha1',
      'AdminNetworkPolicy',
      'kind',
      /reads policy\.networking\.k8s\.io\/v1alpha2 ClusterNetworkPolicy, policy\.networking\.k8s\.io\/v1beta1 ClusterNetworkPolicy there/,
    ],
    ['k8s.cni.cncf.io/v1beta2', 'MultiNetworkPolicy', 'apiVersion', /only at k8s\.cni\.cncf\.io\/v1beta1/],
    ['crd.antrea.io/v1beta1', 'ClusterNetworkPolicyy', 'kind', /unknown kind/],
    [
      'crd.antrea.io/v1alpha1',
      'ClusterNetworkPolicy',
      'apiVersion',
      /only at policy\.networking\.k8s\.io\/v1alpha2, policy\.networking\.k8s\.io\/v1beta1, crd\.antrea\.io\/v1beta1/,
    ],
    ['v1', 'Podd', 'kind', /unknown kind "Podd" in the core group/],
    ['apps/v1', 'Pod', 'apiVersion', /only at v1$/],
    ['netfence.io/v1', 'NetfenceConfig', 'apiVersion', /only at netfence\.io\/v1alpha1/],
  ];
  for (const [apiVersion, kind, field, message] of errorCases) {
    const s = snapshotFromYaml(`${NS('a')}---\n${doc(apiVersion, kind)}`, 'x.yaml');
    t.is(s.namespaces.length, 1, 'the rest loads');
    t.is(s.errors.length, 1, `${apiVersion} ${kind}`);
    t.like(s.errors[0], { file: 'x.yaml', line: field === 'apiVersion' ? 5 : 6, object: `${kind} a/web`, field });
    t.is(s.errors[0].key, undefined, 'no identity: the file keeps what it held (last-good)');
    t.regex(s.errors[0].message, message, `${apiVersion} ${kind}`);
  }
  const warned: [string, string][] = [
    ['apps/v1', 'Deployment'],
    ['v1', 'ConfigMap'],
    ['v1', 'ServiceAccount'],
    ['networking.k8s.io/v1', 'Ingress'],
    ['crd.antrea.io/v1beta1', 'NetworkPolicy'],
    ['policy/v1', 'PodDisruptionBudget'],
    ['monitoring.coreos.com/v1', 'ServiceMonitor'],
  ];
  for (const [apiVersion, kind] of warned) {
    const s = snapshotFromYaml(`${NS('a')}---\n${doc(apiVersion, kind)}`, 'x.yaml');
    t.deepEqual(s.errors, [], `${apiVersion} ${kind}`);
    t.deepEqual(s.warnings, [`skip ${kind} a/web (x.yaml:5): netfence does not read ${kind} (${apiVersion})`]);
  }
});

test('an unknown field in a policy is an error naming the field and its line', (t) => {
  const s = snapshotFromYaml(NP('typo', '  podSelector: {}\n  ingress:\n    - fromm: []\n'), 'np.yaml');
  t.is(s.policies.filter((p) => p.tier === 'netpol').length, 0);
  t.is(s.errors.length, 1);
  t.like(s.errors[0], { file: 'np.yaml', line: 7, object: 'NetworkPolicy a/typo', field: 'spec.ingress[0].fromm' });
  t.is(s.errors[0].message, 'unknown field "fromm"');
  t.is(
    formatValidationError(s.errors[0]),
    'np.yaml:7: load NetworkPolicy a/typo: spec.ingress[0].fromm: unknown field "fromm"',
  );
});

test('one error per bad object, each naming its field; the good objects load', (t) => {
  const bad: [string, string, string, RegExp][] = [
    [
      'bad-cidr',
      '  podSelector: {}\n  ingress:\n    - from:\n        - podSelector: {}\n        - ipBlock: { cidr: 10.0.0.0/33 }\n',
      'spec.ingress[0].from[1].ipBlock.cidr',
      /invalid CIDR/,
    ],
    [
      'bad-except',
      '  podSelector: {}\n  egress:\n    - to:\n        - ipBlock: { cidr: 10.0.0.0/16, except: [10.1.0.0/24] }\n',
      'spec.egress[0].to[0].ipBlock.except[0]',
      /strict subset/,
    ],
    [
      'bad-endport',
      '  podSelector: {}\n  ingress:\n    - ports: [{ port: 90, endPort: 80 }]\n',
      'spec.ingress[0].ports[0].endPort',
      /must be >= port/,
    ],
    [
      'bad-port',
      '  podSelector: {}\n  ingress:\n    - ports: [{ port: 70000 }]\n',
      'spec.ingress[0].ports[0].port',
      /between 1 and 65535/,
    ],
    [
      'bad-proto',
      '  podSelector: {}\n  ingress:\n    - ports: [{ protocol: ICMP, port: 1 }]\n',
      'spec.ingress[0].ports[0].protocol',
      /one of TCP, UDP, SCTP/,
    ],
    [
      'bad-op',
      '  podSelector:\n    matchExpressions: [{ key: app, operator: Equals, values: [x] }]\n',
      'spec.podSelector.matchExpressions[0].operator',
      /one of In, NotIn/,
    ],
    [
      'bad-values',
      '  podSelector:\n    matchExpressions: [{ key: app, operator: In }]\n',
      'spec.podSelector.matchExpressions[0].values',
      /non-empty/,
    ],
    [
      'bad-key',
      '  podSelector:\n    matchLabels: { "bad key!": x }\n',
      'spec.podSelector.matchLabels.bad key!',
      /invalid label key/,
    ],
  ];
  const docs = [NS('a'), ...bad.map(([name, spec]) => NP(name, spec)), NP('good', '  podSelector: {}\n')];
  const badPod =
    'apiVersion: v1\nkind: Pod\nmetadata: { name: p, namespace: a }\nstatus: { podIPs: [{ ip: 10.0.0.300 }] }\n';
  const noName = 'apiVersion: v1\nkind: Pod\nmetadata: { namespace: a }\n';
  const s = snapshotFromYaml([...docs, badPod, noName].join('---\n'), 'bad.yaml');
  t.deepEqual(
    s.policies.filter((p) => p.tier === 'netpol').map((p) => p.ref.name),
    ['good'],
  );
  t.is(s.namespaces.length, 1);
  t.is(s.errors.length, bad.length + 2);
  bad.forEach(([name, , field, message], i) => {
    t.like(s.errors[i], { file: 'bad.yaml', object: `NetworkPolicy a/${name}`, field });
    t.regex(s.errors[i].message, message, name);
  });
  t.like(s.errors[bad.length], {
    object: 'Pod a/p',
    field: 'status.podIPs[0].ip',
    message: 'invalid IP address "10.0.0.300"',
  });
  t.like(s.errors[bad.length + 1], { object: 'Pod a/<unnamed>', field: 'metadata.name', message: 'is required' });
});

test('documents without kind or apiVersion are errors', (t) => {
  const s = snapshotFromYaml('metadata: { name: x }\n', 'k.yaml');
  t.like(s.errors[0], { object: '<unknown object>', field: 'kind', message: 'is required' });
});

test('copies of one object are all rejected with one error naming every place; other objects load', (t) => {
  const web = (cidr: string) =>
    NP('web', `  podSelector: {}\n  ingress: [{ from: [{ ipBlock: { cidr: ${cidr} } }] }]\n`);
  const dir = tmpState({
    'web.yaml': `${NS('a')}---\n${web('10.0.0.0/8')}`,
    'aa-dup.yaml': web('0.0.0.0/0'),
    'ns.yaml': `${NS('b')}---\n${NS('b')}`,
  });
  const s = loadStateDir(dir);
  t.deepEqual(
    s.policies.filter((p) => p.tier === 'netpol'),
    [],
    'neither copy of web replaces the other',
  );
  t.deepEqual(
    s.namespaces.map((n) => n.name),
    ['a'],
    'b (twice in one file) is rejected too',
  );
  t.is(s.errors.length, 2, JSON.stringify(s.errors));
  const [webErr, nsErr] = s.errors;
  t.like(webErr, {
    file: path.join(dir, 'aa-dup.yaml'),
    line: 3,
    object: 'NetworkPolicy a/web',
    field: 'metadata.name',
    key: 'NetworkPolicy a/web',
  });
  t.is(
    webErr.message,
    `duplicate object, defined 2 times (${path.join(dir, 'aa-dup.yaml')}:1, ${path.join(dir, 'web.yaml')}:5): every copy is rejected until one is left`,
  );
  t.like(nsErr, { object: 'Namespace b', key: 'Namespace b' });
  t.regex(nsErr.message, /defined 2 times \(.*ns\.yaml:1, .*ns\.yaml:5\)/);
  t.false(s.origins !== undefined && s.origins.has('NetworkPolicy a/web'), 'not loaded');
});

test('two NetfenceConfigs (whatever their names) are duplicates: both rejected, the defaults stay', (t) => {
  const cfg = (name: string) =>
    `apiVersion: netfence.io/v1alpha1\nkind: NetfenceConfig\nmetadata: { name: ${name} }\nhostInterfaces: [${name}]\n`;
  const s = snapshotFromYaml(`${cfg('one')}---\n${cfg('two')}`, 'c.yaml');
  t.deepEqual(s.config, defaultConfig());
  t.is(s.errors.length, 1);
  t.like(s.errors[0], { object: 'NetfenceConfig one', key: 'NetfenceConfig' });
  t.regex(s.errors[0].message, /defined 2 times \(c\.yaml:1, c\.yaml:6\)/);
});

test('empty strings read as absent (the API omits them); Exists with an empty values list is valid', (t) => {
  const s = snapshotFromYaml(`apiVersion: v1
kind: Pod
metadata: { name: p, namespace: "" }
spec: { nodeName: "", containers: [{ name: c, ports: [{ name: "", containerPort: 80 }] }] }
status: { podIP: "" }
---
${NP('np', '  podSelector: { matchExpressions: [{ key: app, operator: Exists, values: [] }] }\n')}`);
  t.deepEqual(s.errors, []);
  t.like(s.pods[0], { namespace: 'default', ips: [], ports: [{ containerPort: 80, protocol: 'TCP' }] });
  t.is(s.pods[0].nodeName, undefined);
  t.deepEqual(s.policies.find((p) => p.ref.name === 'np')?.subject, {
    kind: 'pods',
    namespace: 'a',
    podSelector: { matchExpressions: [{ key: 'app', operator: 'Exists' }] },
  });
  const bad = snapshotFromYaml(
    NP('np', '  podSelector: { matchExpressions: [{ key: app, operator: Exists, values: [x] }] }\n'),
  );
  t.like(bad.errors[0], {
    field: 'spec.podSelector.matchExpressions[0].values',
    message: 'must be empty for operator Exists',
  });
});

test('List objects are flattened', (t) => {
  const s = snapshotFromYaml(`apiVersion: v1\nkind: List\nitems:\n  - ${NS('a').trim().split('\n').join('\n    ')}\n`);
  t.deepEqual(s.errors, []);
  t.is(s.namespaces[0]?.name, 'a');
});

test('NetfenceConfig: defaults for everything when absent', (t) => {
  const s = snapshotFromYaml(NS('a'));
  t.deepEqual(s.config, defaultConfig());
  t.deepEqual(s.config.privileged, {
    enabled: true,
    established: true,
    loopback: true,
    apiServers: [],
    kubeletPort: 10250,
    agentPorts: [9402],
  });
  t.deepEqual(s.config.hostInterfaces, ['eth*']);
  t.is(s.config.metricsAddress, '127.0.0.1:9402');
  t.is(s.config.eventsPerSecond, 100);
  t.is(s.config.bpffsRoot, '/sys/fs/bpf/netfence');
});

test('NetfenceConfig: fields at top level or under spec; partial privileged keeps defaults', (t) => {
  const top = snapshotFromYaml(
    'apiVersion: netfence.io/v1alpha1\nkind: NetfenceConfig\nprivileged: { loopback: false, apiServers: ["10.0.0.1:6443", "[fd00::0001]:6443"] }\nredirect: { uplink: eth0, gateway: 10.0.0.254 }\nserviceCIDRs: [10.96.0.0/12]\nbpffsRoot: /sys/fs/bpf/nf-1\n',
  );
  t.deepEqual(top.errors, []);
  t.deepEqual(top.config.privileged.apiServers, ['10.0.0.1:6443', '[fd00::1]:6443']);
  t.false(top.config.privileged.loopback);
  t.true(top.config.privileged.established);
  t.is(top.config.bpffsRoot, '/sys/fs/bpf/nf-1');
  t.like(top.config.redirect, {
    mode: 'direct',
    uplink: 'eth0',
    gateway: '10.0.0.254',
    serviceCIDRs: ['10.96.0.0/12'],
  });
  const nested = snapshotFromYaml(
    'apiVersion: netfence.io/v1alpha1\nkind: NetfenceConfig\nspec: { eventsPerSecond: 5 }\n',
  );
  t.deepEqual(nested.errors, []);
  t.is(nested.config.eventsPerSecond, 5);
});

test('NetfenceConfig: a bad field is an error and the defaults stay', (t) => {
  const s = snapshotFromYaml(
    'apiVersion: netfence.io/v1alpha1\nkind: NetfenceConfig\nprivileged: { apiServers: ["10.0.0.1"] }\n',
    'netfence.yaml',
  );
  t.like(s.errors[0], { file: 'netfence.yaml', line: 3, field: 'privileged.apiServers[0]' });
  t.deepEqual(s.config, defaultConfig());
  const typo = snapshotFromYaml('apiVersion: netfence.io/v1alpha1\nkind: NetfenceConfig\nhostInterface: [eth0]\n');
  t.like(typo.errors[0], { field: 'hostInterface', message: 'unknown field "hostInterface"' });
});

test('loadStateDirAsync gives the same snapshot; symlinked files are followed', async (t) => {
  const dir = path.join(ROOT, 'test/fixtures/netpol-truth/pod-selector/state');
  t.true(fs.lstatSync(path.join(dir, '00-topology.yaml')).isSymbolicLink());
  const sync = loadStateDir(dir);
  t.is(sync.pods.length, 9);
  t.deepEqual(await loadStateDirAsync(dir), sync);
});

test('documents read by js-yaml and by yaml (anchors, directives) load alike; a rejected field names its own line in a later document', (t) => {
  const text = [
    '# a comment before the first document\n',
    NS('a'),
    '%YAML 1.2\n---\napiVersion: v1\nkind: Namespace\nmetadata: &meta { name: b, labels: { team: x } }\n',
    '--- # a document marker with a comment\napiVersion: v1\nkind: Namespace\nmetadata: { name: c, labels: { team: y } }\n...\n' +
      'apiVersion: v1\nkind: Namespace\nmetadata: { name: d }\n...\n',
    NP('typo', '  podSelector: {}\n  ingress:\n    - fromm: []\n'),
  ].join('---\n');
  const s = snapshotFromYaml(text, 'mixed.yaml');
  t.deepEqual(
    s.namespaces.map((n) => [n.name, n.labels.team]),
    [
      ['a', undefined],
      ['b', 'x'],
      ['c', 'y'],
      ['d', undefined],
    ],
  );
  const lines = text.split('\n');
  t.is(s.errors.length, 1);
  t.like(s.errors[0], {
    file: 'mixed.yaml',
    line: lines.indexOf('    - fromm: []') + 1,
    field: 'spec.ingress[0].fromm',
  });
});

test('a syntax error in a later document names its line in the file; an alias bomb is refused', (t) => {
  const s = snapshotFromYaml(
    `${NS('a')}---\n${NS('b')}---\napiVersion: v1\nkind: Namespace\nmetadata: { name: [oops\n`,
    'syntax.yaml',
  );
  t.deepEqual(
    s.namespaces.map((n) => n.name),
    ['a', 'b'],
  );
  t.like(s.errors[0], { file: 'syntax.yaml', object: '<yaml document>' });
  t.true((s.errors[0].line ?? 0) >= 9, `line ${s.errors[0].line}`);
  const levels = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < 8; i++)
    levels.push(
      `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10)
        .fill(`*${String.fromCharCode(96 + i)}`)
        .join(', ')}]`,
    );
  const bomb = snapshotFromYaml(
    `apiVersion: v1\nkind: Namespace\nmetadata: { name: bomb }\n${levels.join('\n')}\n`,
    'bomb.yaml',
  );
  t.is(bomb.namespaces.length, 0);
  t.regex(bomb.errors[0].message, /alias/i);
});

test('ParseCache: an unchanged file is not parsed again, a changed one is, a removed one is forgotten', async (t) => {
  const dir = tmpState({ 'a.yaml': NS('a'), 'b.yaml': NS('b') });
  const cache = new ParseCache();
  const text = fs.readFileSync(path.join(dir, 'a.yaml'), 'utf8');
  const first = cache.parse(path.join(dir, 'a.yaml'), text);
  t.is(cache.parse(path.join(dir, 'a.yaml'), text), first, 'same text: the parsed file is reused');
  t.not(cache.parse(path.join(dir, 'a.yaml'), `${text}# edited\n`), first);

  const cold = await loadStateDirAsync(dir);
  t.deepEqual(await loadStateDirAsync(dir, cache), cold);
  t.deepEqual(await loadStateDirAsync(dir, cache), cold, 'a second load from the cache is the same snapshot');
  fs.writeFileSync(path.join(dir, 'b.yaml'), NS('b2'));
  fs.rmSync(path.join(dir, 'a.yaml'));
  t.deepEqual(
    (await loadStateDirAsync(dir, cache)).namespaces.map((n) => n.name),
    ['b2'],
  );
  const again = cache.parse(path.join(dir, 'a.yaml'), text);
  t.not(again, first, 'a removed file left the cache');
});

test('ParseCache: a directory reload after one file is edited parses that file only', async (t) => {
  const dir = tmpState({ 'a.yaml': NS('a'), 'b.yaml': NS('b'), 'sub/c.yaml': NS('c') });
  const cache = new ParseCache();
  await loadStateDirAsync(dir, cache);
  t.is(cache.parses, 3, 'a first load parses every file');
  await loadStateDirAsync(dir, cache);
  t.is(cache.parses, 3, 'an unchanged tree parses nothing');
  fs.writeFileSync(path.join(dir, 'sub/c.yaml'), NS('c2'));
  const s = await loadStateDirAsync(dir, cache);
  t.is(cache.parses, 4, 'the edited file, and no other, is parsed again');
  t.deepEqual(s.namespaces.map((n) => n.name).sort(), ['a', 'b', 'c2']);
});

test('loadStateDirConfigAsync: the settings alone (also in a List), and the files stay parsed for the full load', async (t) => {
  const config = 'apiVersion: netfence.io/v1alpha1\nkind: NetfenceConfig\ncapacity: { rules: 1000 }\n';
  const dir = tmpState({
    'a.yaml': NS('a'),
    'sub/netfence.yaml': config,
    'bad.yaml': NP('typo', '  podSelector: {}\n  ingress:\n    - fromm: []\n'),
  });
  const cache = new ParseCache();
  t.is((await loadStateDirConfigAsync(dir, cache)).capacity.rules, 1000);
  const text = fs.readFileSync(path.join(dir, 'a.yaml'), 'utf8');
  const parsed = cache.parse(path.join(dir, 'a.yaml'), text);
  t.deepEqual(await loadStateDirAsync(dir, cache), loadStateDir(dir));
  t.is(cache.parse(path.join(dir, 'a.yaml'), text), parsed, 'parsed once for both');

  const list = tmpState({
    'all.yaml': `apiVersion: v1\nkind: List\nitems:\n  - ${config.trim().split('\n').join('\n    ')}\n`,
  });
  t.is((await loadStateDirConfigAsync(list)).capacity.rules, 1000);
  t.deepEqual(await loadStateDirConfigAsync(tmpState({ 'a.yaml': NS('a') })), defaultConfig());
});

test('an unreadable state directory throws a clear error', async (t) => {
  t.throws(() => loadStateDir('/nonexistent/netfence'), {
    message: /^load state directory \/nonexistent\/netfence: ENOENT/,
  });
  await t.throwsAsync(loadStateDirAsync('/nonexistent/netfence'), { message: /^load state directory/ });
});

test('Nodes, Services and NetworkAttachmentDefinitions keep the fields policy needs', (t) => {
  const s = snapshotFromYaml(`apiVersion: v1
kind: Node
metadata: { name: n1 }
status:
  addresses:
    - { type: Hostname, address: n1 }
    - { type: InternalIP, address: "FD00:0::0A" }
    - { type: ExternalIP, address: 203.0.113.5 }
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: a }
spec:
  clusterIP: 10.96.0.5
  selector: { app: web }
  ports: [{ port: 80 }, { name: dns, port: 53, protocol: UDP, targetPort: dns }, { name: a, port: 81, targetPort: 0 }, { name: b, port: 82, targetPort: "" }]
---
apiVersion: v1
kind: Service
metadata: { name: headless, namespace: a }
spec: { clusterIP: None, ports: [] }
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: { name: vlan100, namespace: a }
spec:
  config: '{"cniVersion":"0.3.1","name":"vlan100","plugins":[{"type":"sriov","vlan":100},{"type":"tuning"}]}'
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: { name: broken, namespace: a }
spec: { config: '{"type":' }
`);
  t.deepEqual(s.nodes, [{ name: 'n1', labels: {}, addresses: ['fd00::a', '203.0.113.5'] }]);
  t.deepEqual(s.services[0], {
    namespace: 'a',
    name: 'web',
    clusterIPs: ['10.96.0.5'],
    selector: { app: 'web' },
    ports: [
      { port: 80, targetPort: 80, protocol: 'TCP' },
      { name: 'dns', port: 53, targetPort: 'dns', protocol: 'UDP' },
      // SetDefaults_Service: a targetPort of 0 or "" is the port itself
      { name: 'a', port: 81, targetPort: 81, protocol: 'TCP' },
      { name: 'b', port: 82, targetPort: 82, protocol: 'TCP' },
    ],
  });
  t.deepEqual(s.services[1].clusterIPs, []);
  t.is(s.networkAttachmentDefinitions.length, 1);
  t.is(s.networkAttachmentDefinitions[0].vlan, 100);
  t.like(s.errors[0], { object: 'NetworkAttachmentDefinition a/broken', field: 'spec.config' });
  t.regex(s.errors[0].message, /^invalid CNI config JSON/);
});

test('a Pod with a malformed network-status annotation is rejected naming the annotation', (t) => {
  const s = snapshotFromYaml(`apiVersion: v1
kind: Pod
metadata:
  name: p
  namespace: a
  annotations: { k8s.v1.cni.cncf.io/network-status: '[{"name":"net1","ips":["nope"]}]' }
`);
  t.is(s.pods.length, 0);
  t.like(s.errors[0], { object: 'Pod a/p', field: 'metadata.annotations.k8s.v1.cni.cncf.io/network-status[0].ips[0]' });
});

test("README's NetfenceConfig example parses without an error and spells out the defaults it names", (t) => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const block = /### NetfenceConfig[\s\S]*?```yaml\n([\s\S]*?)```/.exec(readme);
  t.truthy(block, 'README has a yaml block under "### NetfenceConfig"');
  const s = snapshotFromYaml(block![1], 'README.md');
  t.deepEqual(s.errors, []);
  const d = defaultConfig();
  t.is(s.config.metricsAddress, d.metricsAddress);
  t.deepEqual(s.config.privileged.agentPorts, d.privileged.agentPorts);
  t.like(s.config.redirect, {
    mode: 'direct',
    mark: DEFAULT_REDIRECT_MARK,
    table: DEFAULT_REDIRECT_TABLE,
    gateway6: 'fd00::1',
  });
});

test('ParseCache keeps decoded objects: after an edit, an unchanged file gives the same objects', async (t) => {
  const dir = tmpState({ 'a.yaml': NS('a'), 'b.yaml': NS('b') });
  const cache = new ParseCache();
  const before = await loadStateDirAsync(dir, cache);
  fs.writeFileSync(path.join(dir, 'b.yaml'), NS('b2'));
  const after = await loadStateDirAsync(dir, cache);
  t.is(after.namespaces[0], before.namespaces[0], 'a.yaml: decoded once');
  t.is(after.namespaces[1].name, 'b2');
});

test('a cold load of much text is decoded on worker threads: the same snapshot, errors with their lines', async (t) => {
  // 40 files of ~30 kB (a comment pads each), over the cache's threshold of 1 MB.
  const pad = `# ${'x'.repeat(30_000)}\n`;
  const files: Record<string, string> = {};
  for (let i = 0; i < 40; i++) files[`ns-${String(i).padStart(2, '0')}.yaml`] = `${pad}${NS(`n${i}`)}`;
  files['dup.yaml'] = `${NS('n3')}---\n${NP('bad', '  podSelector: 7\n')}`;
  files['list.yaml'] = `apiVersion: v1\nkind: List\nitems:\n- ${NS('n5').trimEnd().replace(/\n/g, '\n  ')}\n`;
  files['syntax.yaml'] = 'a: [\n';
  const dir = tmpState(files);
  const cache = new ParseCache(1e6);
  const pooled = await loadStateDirAsync(dir, cache);
  t.is(cache.parses, 43);
  t.deepEqual(pooled, loadStateDir(dir));
  const lines = pooled.errors.map((e) => `${path.basename(e.file ?? '')}:${e.line}: ${e.field}`);
  t.deepEqual(lines, [
    'syntax.yaml:2: ',
    'dup.yaml:3: metadata.name',
    'dup.yaml:9: spec.podSelector',
    'list.yaml:6: items[0].metadata.name',
  ]);
  // The other copies' places come from documents decoded on a worker (lines found again).
  t.regex(pooled.errors[1].message, /dup\.yaml:1, .*ns-03\.yaml:2\)/);
  t.regex(pooled.errors[3].message, /list\.yaml:4, .*ns-05\.yaml:2\)/);
});

test('a cold load shared by the main thread and a worker gives every file its own documents, in order', async (t) => {
  // More files than the worker's first two batches: the main thread decodes some too.
  const files: Record<string, string> = {};
  for (let i = 0; i < 300; i++) files[`ns-${String(i).padStart(3, '0')}.yaml`] = NS(`n${i}`);
  const dir = tmpState(files);
  const cache = new ParseCache(0);
  const pooled = await loadStateDirAsync(dir, cache);
  t.is(cache.parses, 300);
  t.deepEqual(pooled, loadStateDir(dir));
  t.deepEqual(
    pooled.namespaces.map((n) => n.name),
    Array.from({ length: 300 }, (_, i) => `n${i}`),
  );
});

test('documents decoded on a worker come back as the main thread decodes them (every kind of the demo state)', async (t) => {
  const dir = path.join(ROOT, 'examples/demo');
  const cache = new ParseCache(0);
  const pooled = await loadStateDirAsync(dir, cache);
  t.true(cache.parses > 1);
  const here = loadStateDir(dir);
  t.deepEqual(pooled, here);
  t.true(here.policies.some((p) => p.ref.kind === 'ClusterNetworkPolicy'));
  t.true(here.policies.some((p) => p.ref.kind === 'NetworkPolicy'));
  t.true(here.services.length > 0);
});

test('files larger than the read buffer are read whole, and the version hashes every byte of every file', async (t) => {
  const big = `# ${'x'.repeat(200_000)}\n${NS('big')}`;
  const files = { 'a.yaml': NS('a'), 'b/big.yaml': big, 'c.yml': '' };
  const dir = tmpState(files);
  const state = await readStateDir(dir);
  t.deepEqual(state.texts, [files['a.yaml'], files['b/big.yaml'], files['c.yml']]);
  const hash = createHash('sha256');
  for (const [rel, text] of Object.entries(files)) hash.update(`${rel}\0`).update(text).update('\0');
  t.is(state.version, hash.digest('hex'));
  t.deepEqual(
    loadStateDir(dir).namespaces.map((n) => n.name),
    ['a', 'big'],
  );
});
