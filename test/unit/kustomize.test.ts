// deploy/ as a kustomize base and examples/overlays/k3s-flannel as an overlay, rendered by
// the real `kubectl kustomize` (Debian's kubernetes-client; scripts/setup.sh installs it):
// the base renders exactly the manifests in deploy/ and lists every one of them; RBAC stays
// read-only; the overlay moves every container to its registry, replaces the agent's
// NetfenceConfig under the name the DaemonSet mounts, and points the CNI host paths at k3s's.
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { buildSnapshot } from '../../src/model/snapshot';
import { parseYamlText } from '../../src/sources/directory';

const REPO = path.resolve(__dirname, '../../..');
const BASE = path.join(REPO, 'deploy');
const OVERLAY = path.join(REPO, 'examples/overlays/k3s-flannel');

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [k: string]: unknown;
}
interface Container {
  name: string;
  image: string;
}
interface DaemonSet extends Obj {
  spec: {
    template: {
      spec: {
        containers: Container[];
        initContainers: Container[];
        volumes: Array<{ name: string; hostPath?: { path: string }; configMap?: { name: string } }>;
      };
    };
  };
}

function docsOf(text: string, what: string): Obj[] {
  return parseAllDocuments(text).map((d) => {
    if (d.errors.length) throw new Error(`parse ${what}: ${d.errors[0].message}`);
    return d.toJS() as Obj;
  });
}

function render(dir: string): Obj[] {
  // stderr: newer kustomize versions warn about the fields Debian's v2.0.3 needs (bases:).
  const text = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return docsOf(text, `kubectl kustomize ${dir}`);
}

const key = (o: Obj) => `${o.apiVersion}/${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
const daemonSet = (objs: Obj[]) => objs.find((o) => o.kind === 'DaemonSet') as DaemonSet;
const images = (ds: DaemonSet) =>
  [...ds.spec.template.spec.initContainers, ...ds.spec.template.spec.containers].map((c) => `${c.name}=${c.image}`);
const netfenceYaml = (objs: Obj[]) => {
  const ds = daemonSet(objs);
  const cmName = ds.spec.template.spec.volumes.find((v) => v.name === 'config')?.configMap?.name;
  const cm = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name === cmName) as
    (Obj & { data: Record<string, string> }) | undefined;
  return cm?.data['netfence.yaml'];
};

function assertReadOnlyRbac(t: ExecutionContext, objs: Obj[]): void {
  const roles = objs.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role') as Array<
    Obj & { rules: Array<{ verbs: string[] }> }
  >;
  t.true(roles.length > 0, 'a role is rendered');
  for (const r of roles)
    for (const rule of r.rules)
      t.deepEqual([...rule.verbs].sort(), ['get', 'list', 'watch'], `${r.kind} ${r.metadata.name}`);
}

const base = render(BASE);
const overlay = render(OVERLAY);

test('the base renders exactly the manifests in deploy/, and kustomization.yaml lists every one', (t) => {
  const listed = (parse(fs.readFileSync(path.join(BASE, 'kustomization.yaml'), 'utf8')) as { resources: string[] })
    .resources;
  const onDisk = (dir: string): string[] =>
    fs.readdirSync(path.join(BASE, dir), { withFileTypes: true }).flatMap((e) => {
      const rel = path.join(dir, e.name);
      if (e.isDirectory()) return onDisk(rel);
      return /\.ya?ml$/.test(e.name) && rel !== 'kustomization.yaml' ? [rel] : [];
    });
  t.deepEqual([...listed].sort(), onDisk('').sort());

  const files = listed.flatMap((f) => docsOf(fs.readFileSync(path.join(BASE, f), 'utf8'), f));
  t.deepEqual(base.map(key).sort(), files.map(key).sort());
  // kustomize without transformers changes nothing in the objects.
  const byKey = new Map(base.map((o) => [key(o), o]));
  for (const f of files) t.deepEqual(byKey.get(key(f)), f, key(f));
  t.deepEqual([...new Set(base.map((o) => o.kind))].sort(), [
    'ClusterRole',
    'ClusterRoleBinding',
    'ConfigMap',
    'CustomResourceDefinition',
    'DaemonSet',
    'Namespace',
    'ServiceAccount',
  ]);
  assertReadOnlyRbac(t, base);
  t.deepEqual(
    images(daemonSet(base)),
    ['mount-bpffs', 'install-cni', 'agent'].map((c) => `${c}=ghcr.io/netfence/netfence:0.1.0`),
  );
});

test('the k3s-flannel overlay: same objects, its registry on every container, its config, k3s CNI paths', (t) => {
  t.deepEqual(overlay.map(key).sort(), base.map(key).sort());
  assertReadOnlyRbac(t, overlay);
  t.deepEqual(
    images(daemonSet(overlay)),
    ['mount-bpffs', 'install-cni', 'agent'].map((c) => `${c}=registry.example.com/platform/netfence:0.1.0`),
  );

  // The DaemonSet mounts the replaced ConfigMap, which holds the overlay's file verbatim: a
  // valid NetfenceConfig with k3s's service CIDR.
  const text = netfenceYaml(overlay);
  t.is(text, fs.readFileSync(path.join(OVERLAY, 'netfence.yaml'), 'utf8'));
  const snap = buildSnapshot(parseYamlText(text!, 'netfence.yaml').objects);
  t.deepEqual(snap.errors, []);
  t.deepEqual(snap.config.serviceCIDRs, ['10.43.0.0/16']);
  t.not(netfenceYaml(base), text);

  const hostPaths = (ds: DaemonSet) =>
    Object.fromEntries(ds.spec.template.spec.volumes.filter((v) => v.hostPath).map((v) => [v.name, v.hostPath!.path]));
  t.deepEqual(hostPaths(daemonSet(overlay)), {
    ...hostPaths(daemonSet(base)),
    'cni-bin': '/var/lib/rancher/k3s/data/cni',
    'cni-conf': '/var/lib/rancher/k3s/agent/etc/cni/net.d',
  });
  // Everything but the DaemonSet and the ConfigMap is the base's, unchanged.
  const byKey = new Map(base.map((o) => [key(o), o]));
  for (const o of overlay.filter((x) => x.kind !== 'DaemonSet' && x.kind !== 'ConfigMap'))
    t.deepEqual(o, byKey.get(key(o)), key(o));
});
