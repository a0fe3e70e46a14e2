// LastGood: a rejected object keeps its last valid version, one that never had a valid
// version stays out, a file that does not parse keeps the objects it held, deletions and
// every other change apply, and a fixed object comes back at its new version. Snapshots
// come from real state directories (loadStateDir), as the agent's directory source reads them.
// A store carried through its plain data (toData -> JSON -> fromData, as across an agent
// restart) keeps every kind's last valid version and the files they came from.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LastGood, type LastGoodData } from '../../src/model/last-good';
import type { KindName } from '../../src/model/registry';
import type { Snapshot } from '../../src/model/types';
import { loadStateDir } from '../../src/sources/directory';

class StateDir {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nf-last-good-'));
  last = new LastGood();
  write(name: string, text: string): this {
    fs.writeFileSync(path.join(this.dir, name), text);
    return this;
  }
  remove(name: string): this {
    fs.rmSync(path.join(this.dir, name));
    return this;
  }
  /** The store as a restarted agent has it: through its plain data, as JSON. */
  restart(): this {
    this.last = LastGood.fromData(JSON.parse(JSON.stringify(this.last.toData())) as LastGoodData);
    return this;
  }
  /** Loads the directory and merges it, like the agent on a new snapshot. */
  merge(): { snapshot: Snapshot; kept: string[]; source: Snapshot } {
    const source = loadStateDir(this.dir);
    return { ...this.last.merge(source), source };
  }
}

function state(t: { teardown(fn: () => void): void }): StateDir {
  const s = new StateDir();
  t.teardown(() => fs.rmSync(s.dir, { recursive: true, force: true }));
  return s;
}

const NS = 'apiVersion: v1\nkind: Namespace\nmetadata: { name: demo }\n';
const pod = (name: string, ip: string) =>
  `apiVersion: v1\nkind: Pod\nmetadata: { name: ${name}, namespace: demo, labels: { app: ${name} } }\nspec: { nodeName: n1 }\nstatus: { podIPs: [{ ip: ${ip} }] }\n`;
const np = (name: string, cidr: string) =>
  `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: ${name}, namespace: demo }\nspec:\n  podSelector: {}\n  ingress: [{ from: [{ ipBlock: { cidr: ${cidr} } }] }]\n`;

const names = (s: Snapshot) =>
  s.policies.filter((p) => p.ref.kind !== 'System').map((p) => `${p.ref.kind} ${p.ref.namespace}/${p.ref.name}`);
const cidrs = (s: Snapshot, name: string) =>
  s.policies
    .find((p) => p.ref.name === name)!
    .rules.flatMap((r) => r.peers.map((x) => (x.kind === 'cidr' ? x.cidr : x.kind)));

test('a new bad object is skipped with its error; everything else applies', (t) => {
  const s = state(t)
    .write('base.yaml', NS + '---\n' + pod('a', '10.244.1.2'))
    .write('web.yaml', np('web', '10.0.0.0/8'));
  s.merge();
  const { snapshot, kept, source } = s
    .write('bad.yaml', np('bad', '10.0.0.0/33'))
    .write('b.yaml', pod('b', '10.244.1.3'))
    .merge();
  t.deepEqual(kept, []);
  t.deepEqual(names(snapshot), ['NetworkPolicy demo/web']);
  t.deepEqual(snapshot.pods.map((p) => p.name).sort(), ['a', 'b'], 'the new pod in the same step applies');
  t.is(snapshot, source, 'nothing to keep: the source snapshot as is');
  t.like(snapshot.errors[0], {
    key: 'NetworkPolicy demo/bad',
    field: 'spec.ingress[0].from[0].ipBlock.cidr',
    file: path.join(s.dir, 'bad.yaml'),
  });
});

test('an object edited into a bad one keeps its last valid version; other changes in the same step apply', (t) => {
  const s = state(t)
    .write('base.yaml', NS + '---\n' + pod('a', '10.244.1.2'))
    .write('web.yaml', np('web', '10.0.0.0/8'))
    .write('db.yaml', np('db', '10.1.0.0/16'));
  const first = s.merge().snapshot;
  const { snapshot, kept } = s
    .write('web.yaml', np('web', '10.0.0.0/33'))
    .write('db.yaml', np('db', '10.2.0.0/16'))
    .write('b.yaml', pod('b', '10.244.1.3'))
    .merge();
  t.deepEqual(kept, ['NetworkPolicy demo/web']);
  t.deepEqual(cidrs(snapshot, 'web'), ['10.0.0.0/8'], 'the old rules, not none (no traffic opened)');
  t.deepEqual(
    snapshot.policies.find((p) => p.ref.name === 'web'),
    first.policies.find((p) => p.ref.name === 'web'),
  );
  t.deepEqual(cidrs(snapshot, 'db'), ['10.2.0.0/16'], 'the valid edit of another policy applies');
  t.deepEqual(snapshot.pods.map((p) => p.name).sort(), ['a', 'b']);
  t.is(snapshot.errors.length, 1, 'the error stays reported');
  t.is(snapshot.errors[0].key, 'NetworkPolicy demo/web');

  const again = s.write('other.yaml', pod('c', '10.244.1.4')).merge();
  t.deepEqual(again.kept, ['NetworkPolicy demo/web'], 'kept across later snapshots while still bad');
  t.deepEqual(cidrs(again.snapshot, 'web'), ['10.0.0.0/8']);
});

test('a deleted object is removed even while an unrelated object is bad', (t) => {
  const s = state(t)
    .write('base.yaml', NS)
    .write('web.yaml', np('web', '10.0.0.0/8'))
    .write('db.yaml', np('db', '10.1.0.0/16'));
  s.merge();
  const { snapshot, kept } = s
    .remove('web.yaml')
    .write('db.yaml', np('db', '10.1.0.0/33'))
    .write('broken.yaml', 'kind: [unclosed\n')
    .merge();
  t.deepEqual(kept, ['NetworkPolicy demo/db']);
  t.deepEqual(names(snapshot), ['NetworkPolicy demo/db'], 'web is gone');
  t.is(snapshot.errors.length, 2);
});

test('a file that does not parse keeps the objects it held; the other files follow their changes', (t) => {
  const s = state(t)
    .write('base.yaml', NS)
    .write('pods.yaml', pod('a', '10.244.1.2') + '---\n' + pod('b', '10.244.1.3'))
    .write('web.yaml', np('web', '10.0.0.0/8'))
    .write('db.yaml', np('db', '10.1.0.0/16'));
  s.merge();
  const { snapshot, kept } = s
    .write('pods.yaml', 'apiVersion: v1\nkind: Pod\nmetadata: { name: a\n')
    .remove('db.yaml')
    .merge();
  t.deepEqual(kept.sort(), ['Pod demo/a', 'Pod demo/b']);
  t.deepEqual(snapshot.pods.map((p) => p.name).sort(), ['a', 'b']);
  t.deepEqual(names(snapshot), ['NetworkPolicy demo/web'], 'db, deleted from its own file, is gone');
  t.is(snapshot.errors.length, 1);
  t.like(snapshot.errors[0], { file: path.join(s.dir, 'pods.yaml'), object: '<yaml document>' });
  t.is(snapshot.errors[0].key, undefined);
  t.true((snapshot.errors[0].line ?? 0) > 0, 'the YAML error names its line');

  // a file whose second document breaks: the first document's object is at its new version
  const partial = s.write('pods.yaml', pod('a', '10.244.1.9') + '---\nkind: [unclosed\n').merge();
  t.deepEqual(partial.kept, ['Pod demo/b']);
  t.deepEqual(partial.snapshot.pods.map((p) => `${p.name} ${p.ips[0]}`).sort(), ['a 10.244.1.9', 'b 10.244.1.3']);
});

test('a fixed object comes back at its new version; once deleted it is gone', (t) => {
  const s = state(t).write('base.yaml', NS).write('web.yaml', np('web', '10.0.0.0/8'));
  s.merge();
  t.deepEqual(s.write('web.yaml', np('web', 'nope')).merge().kept, ['NetworkPolicy demo/web']);
  const fixed = s.write('web.yaml', np('web', '10.3.0.0/16')).merge();
  t.deepEqual(fixed.kept, []);
  t.deepEqual(cidrs(fixed.snapshot, 'web'), ['10.3.0.0/16']);
  t.deepEqual(fixed.snapshot.errors, []);
  // bad again: the version kept is the fixed one, not the first
  t.deepEqual(cidrs(s.write('web.yaml', np('web', 'nope')).merge().snapshot, 'web'), ['10.3.0.0/16']);
  const gone = s.remove('web.yaml').merge();
  t.deepEqual(names(gone.snapshot), []);
  t.deepEqual(
    names(s.write('web.yaml', np('web', 'nope')).merge().snapshot),
    [],
    'deleted, then bad: never valid since, skipped',
  );
});

test('a duplicate never replaces the enforced object, whichever file sorts first; once one copy is left it applies', (t) => {
  const s = state(t).write('base.yaml', NS).write('web.yaml', np('web', '10.0.0.0/8'));
  s.merge();
  for (const dup of ['aa-dup.yaml', 'zz-dup.yaml']) {
    const { snapshot, kept } = s.write(dup, np('web', '0.0.0.0/0')).merge();
    t.deepEqual(kept, ['NetworkPolicy demo/web'], dup);
    t.deepEqual(cidrs(snapshot, 'web'), ['10.0.0.0/8'], `${dup}: the enforced version, not either copy`);
    t.is(snapshot.errors.length, 1);
    t.like(snapshot.errors[0], { key: 'NetworkPolicy demo/web', field: 'metadata.name' });
    t.true(
      snapshot.errors[0].message.includes(path.join(s.dir, 'web.yaml')) &&
        snapshot.errors[0].message.includes(path.join(s.dir, dup)),
      'names both places',
    );
    s.remove(dup);
  }
  const moved = s.write('aa-dup.yaml', np('web', '10.5.0.0/16')).remove('web.yaml').merge();
  t.deepEqual(moved.kept, []);
  t.deepEqual(cidrs(moved.snapshot, 'web'), ['10.5.0.0/16'], 'one copy left: it is the object');
  t.deepEqual(moved.snapshot.errors, []);
});

test('copies of an object that never had a valid version: neither is enforced until one is left', (t) => {
  const s = state(t)
    .write('base.yaml', NS)
    .write('a.yaml', np('web', '10.0.0.0/8'))
    .write('b.yaml', np('web', '10.1.0.0/16'));
  const { snapshot, kept } = s.merge();
  t.deepEqual(kept, []);
  t.deepEqual(names(snapshot), []);
  t.is(snapshot.errors[0].key, 'NetworkPolicy demo/web');
  t.deepEqual(cidrs(s.remove('b.yaml').merge().snapshot, 'web'), ['10.0.0.0/8']);
});

test('a document of an unknown apiVersion or kind keeps what its file held; a valid edit beside it applies', (t) => {
  const web = np('web', '10.0.0.0/8');
  const s = state(t)
    .write('base.yaml', NS)
    .write('web.yaml', `${pod('a', '10.244.1.2')}---\n${web}`);
  s.merge();
  for (const edit of [
    web.replace('networking.k8s.io/v1', 'networking.k8s.io/v2'),
    web.replace('kind: NetworkPolicy', 'kind: NetworkPolicyy'),
  ]) {
    const { snapshot, kept, source } = s.write('web.yaml', `${pod('a', '10.244.1.9')}---\n${edit}`).merge();
    t.deepEqual(kept, ['NetworkPolicy demo/web']);
    t.deepEqual(cidrs(snapshot, 'web'), ['10.0.0.0/8'], 'still enforced');
    t.deepEqual(
      snapshot.pods.map((p) => p.ips[0]),
      ['10.244.1.9'],
      'the pod of the same file follows its edit',
    );
    t.is(source.errors.length, 1);
    t.like(source.errors[0], { file: path.join(s.dir, 'web.yaml'), key: undefined });
  }
  const replaced = s
    .write(
      'web.yaml',
      `${pod('a', '10.244.1.9')}---\napiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web, namespace: demo }\n`,
    )
    .merge();
  t.deepEqual(replaced.kept, [], 'a Deployment in its place is a warning: web is deleted');
  t.deepEqual(names(replaced.snapshot), []);
});

test('a ClusterNetworkPolicy whose rule fails closed is enforced at its current version, error listed', (t) => {
  const cnp = (to: string) =>
    `apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: { name: guard }\nspec:\n  tier: Admin\n  priority: 5\n  subject: { namespaces: {} }\n  egress: [{ action: Deny, to: [${to}] }]\n`;
  const s = state(t).write('base.yaml', NS).write('guard.yaml', cnp('{ networks: [10.0.0.0/8] }'));
  s.merge();
  const { snapshot, kept } = s.write('guard.yaml', cnp('{ domainNames: [example.com] }')).merge();
  t.deepEqual(kept, []);
  t.deepEqual(cidrs(snapshot, 'guard'), ['any'], 'the new version, failed closed: a Deny of every peer');
  t.like(snapshot.errors[0], { key: 'ClusterNetworkPolicy guard', field: 'spec.egress[0].to[0].domainNames' });
});

// One valid and one rejected (but identifiable) version of every kind the snapshot holds
// (the registry's, keyed by its names: a new kind does not compile without its case):
// the rejected one leaves the merged snapshot exactly as the valid one made it, so every
// kind's identity agrees between loaded objects and errors.
const KINDS: Record<KindName | 'NetfenceConfig', [string, string, string]> = {
  Namespace: [
    'Namespace other',
    'apiVersion: v1\nkind: Namespace\nmetadata: { name: other, labels: { team: x } }\n',
    'apiVersion: v1\nkind: Namespace\nmetadata: { name: other, labels: { team: [x] } }\n',
  ],
  Pod: ['Pod demo/a', pod('a', '10.244.1.2'), pod('a', 'nope')],
  Node: [
    'Node n1',
    'apiVersion: v1\nkind: Node\nmetadata: { name: n1 }\nstatus: { addresses: [{ type: InternalIP, address: 192.168.50.11 }] }\n',
    'apiVersion: v1\nkind: Node\nmetadata: { name: n1 }\nstatus: { addresses: [{ type: InternalIP, address: nope }] }\n',
  ],
  Service: [
    'Service demo/svc',
    'apiVersion: v1\nkind: Service\nmetadata: { name: svc, namespace: demo }\nspec: { clusterIP: 10.96.0.10, selector: { app: a }, ports: [{ port: 80 }] }\n',
    'apiVersion: v1\nkind: Service\nmetadata: { name: svc, namespace: demo }\nspec: { clusterIP: nope, selector: { app: a }, ports: [{ port: 80 }] }\n',
  ],
  NetworkAttachmentDefinition: [
    'NetworkAttachmentDefinition demo/net1',
    `apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata: { name: net1, namespace: demo }\nspec: { config: '{"vlan": 5}' }\n`,
    `apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata: { name: net1, namespace: demo }\nspec: { config: '{"vlan": 5' }\n`,
  ],
  NetworkPolicy: ['NetworkPolicy demo/web', np('web', '10.0.0.0/8'), np('web', '10.0.0.0/8') + 'bogus: 1\n'],
  ClusterNetworkPolicy: [
    'ClusterNetworkPolicy guard',
    'apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: { name: guard }\nspec:\n  tier: Admin\n  priority: 5\n  subject: { namespaces: {} }\n  ingress: [{ name: no-web, action: Deny, from: [{ namespaces: {} }] }]\n',
    'apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: { name: guard }\nspec:\n  tier: Admin\n  priority: 5\n  subject: { namespaces: {} }\n  ingress: [{ name: no-web, action: Deny, from: [{ namespaces: {} }] }]\nbogus: 1\n',
  ],
  MultiNetworkPolicy: [
    'MultiNetworkPolicy demo/m',
    'apiVersion: k8s.cni.cncf.io/v1beta1\nkind: MultiNetworkPolicy\nmetadata: { name: m, namespace: demo, annotations: { k8s.v1.cni.cncf.io/policy-for: net1 } }\nspec: { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] }\n',
    'apiVersion: k8s.cni.cncf.io/v1beta1\nkind: MultiNetworkPolicy\nmetadata: { name: m, namespace: demo, annotations: { k8s.v1.cni.cncf.io/policy-for: a/b/c } }\nspec: { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] }\n',
  ],
  NodePolicy: [
    'NodePolicy ssh',
    'apiVersion: crd.antrea.io/v1beta1\nkind: ClusterNetworkPolicy\nmetadata: { name: ssh }\nspec:\n  priority: 5\n  appliedTo: [{ nodeSelector: {} }]\n  ingress: [{ action: Drop, from: [{ ipBlock: { cidr: 192.168.0.0/16 } }] }]\n',
    'apiVersion: crd.antrea.io/v1beta1\nkind: ClusterNetworkPolicy\nmetadata: { name: ssh }\nspec:\n  priority: 5\n  appliedTo: [{ nodeSelector: {} }]\n  ingress: [{ action: Drop, from: [{ ipBlock: { cidr: 192.168.0.0/99 } }] }]\n',
  ],
  NetfenceConfig: [
    'NetfenceConfig',
    'apiVersion: netfence.io/v1alpha1\nkind: NetfenceConfig\nmetadata: { name: netfence }\nhostInterfaces: [eth9]\nprivileged: { kubeletPort: 10999 }\n',
    'apiVersion: netfence.io/v1alpha1\nkind: NetfenceConfig\nmetadata: { name: netfence }\nhostInterfaces: [eth9]\nprivileged: { kubeletPort: 0 }\n',
  ],
};

const content = ({ errors: _e, warnings: _w, origins: _o, ...rest }: Snapshot) => rest;

for (const [kind, [key, good, bad]] of Object.entries(KINDS)) {
  test(`${kind}: a rejected edit keeps the valid version, identified as ${key}`, (t) => {
    const s = state(t).write('base.yaml', NS).write('obj.yaml', good);
    const first = s.merge();
    t.deepEqual(first.source.errors, [], 'the valid version loads');
    t.true(first.source.origins !== undefined && first.source.origins.has(key), `loaded as ${key}`);
    const second = s.write('obj.yaml', bad).merge();
    t.is(second.source.errors.length, 1, 'the bad version is rejected');
    t.is(second.source.errors[0].key, key);
    t.deepEqual(second.kept, [key]);
    t.deepEqual(content(second.snapshot), content(first.snapshot));
  });

  test(`${kind}: the valid version survives a restart (store through JSON)`, (t) => {
    const s = state(t).write('base.yaml', NS).write('obj.yaml', good);
    const first = s.merge();
    const second = s.restart().write('obj.yaml', bad).merge();
    t.deepEqual(second.kept, [key]);
    t.deepEqual(content(second.snapshot), content(first.snapshot));
  });
}

test('after a restart, a file that does not parse keeps the objects it held; deletions apply', (t) => {
  const s = state(t)
    .write('base.yaml', NS)
    .write('pods.yaml', pod('a', '10.244.1.2'))
    .write('web.yaml', np('web', '10.0.0.0/8'));
  s.merge();
  t.deepEqual(new LastGood().toData().origins, {}, 'an empty store has nothing');
  const { snapshot, kept } = s.restart().write('pods.yaml', 'kind: [unclosed\n').remove('web.yaml').merge();
  t.deepEqual(kept, ['Pod demo/a'], 'the file each object came from is kept too');
  t.deepEqual(names(snapshot), [], 'web, deleted while the agent was down, stays deleted');
  t.deepEqual(snapshot.origins?.get('Pod demo/a'), { file: path.join(s.dir, 'pods.yaml') });
});
