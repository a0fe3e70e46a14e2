// deploy/: every manifest parses and is a known kind; the DaemonSet's probes hit what the
// agent serves; the agent's capabilities are exactly the four it needs; RBAC covers
// exactly what the Kubernetes source watches; the CRDs match the watched resources; the
// agent container passes only flags `netfence agent` defines.
import test from 'ava';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Registry } from 'prom-client';
import { parseAllDocuments } from 'yaml';
import { startHttp } from '../../src/agent/http';
import { chooseSource } from '../../src/cli/agent-source';
import { agentCommand } from '../../src/cli/agent';
import { buildSnapshot } from '../../src/model/snapshot';
import { parseYamlText } from '../../src/sources/directory';
import { groupOf } from '../../src/model/kinds';
import { READ_KINDS } from '../../src/model/registry';
import { WATCHED_RESOURCES } from '../../src/sources/kubernetes';
import { resourceId } from '../../src/sources/kubernetes-resources';

const deployDir = path.resolve(__dirname, '../../../deploy');

interface Doc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [k: string]: unknown;
}

function yamlFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return yamlFiles(p);
    // kustomization.yaml is kustomize's file, not a manifest (test/unit/kustomize.test.ts).
    return /\.ya?ml$/.test(e.name) && e.name !== 'kustomization.yaml' ? [p] : [];
  });
}

const docs: Doc[] = yamlFiles(deployDir).flatMap((f) =>
  parseAllDocuments(fs.readFileSync(f, 'utf8')).map((d) => {
    if (d.errors.length) throw new Error(`parse ${f}: ${d.errors[0].message}`);
    return d.toJS() as Doc;
  }),
);
const one = (kind: string) => {
  const found = docs.filter((d) => d.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`);
  return found[0];
};

interface Probe {
  httpGet: { path: string; port: number; host?: string };
}
interface Container {
  name: string;
  command?: string[];
  args?: string[];
  securityContext?: { privileged?: boolean; capabilities?: { add?: string[]; drop?: string[] } };
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  env?: Array<{ name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
  volumeMounts?: Array<{ name: string; mountPath: string; mountPropagation?: string }>;
}
interface PodSpec {
  hostNetwork?: boolean;
  hostPID?: boolean;
  serviceAccountName?: string;
  containers: Container[];
  initContainers?: Container[];
  volumes: Array<{ name: string; hostPath?: { path: string } }>;
}
const podSpec = () => (one('DaemonSet') as unknown as { spec: { template: { spec: PodSpec } } }).spec.template.spec;
const agent = () => podSpec().containers.find((c) => c.name === 'agent')!;

const KNOWN_KINDS = new Set([
  'v1/Namespace',
  'v1/ServiceAccount',
  'v1/ConfigMap',
  'apps/v1/DaemonSet',
  'rbac.authorization.k8s.io/v1/ClusterRole',
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding',
  'apiextensions.k8s.io/v1/CustomResourceDefinition',
]);

test('every manifest parses, is a known kind and is named', (t) => {
  t.true(docs.length >= 8);
  for (const d of docs) {
    t.true(KNOWN_KINDS.has(`${d.apiVersion}/${d.kind}`), `${d.apiVersion} ${d.kind}`);
    t.regex(d.metadata?.name ?? '', /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
  }
});

test('the DaemonSet probes paths and the port the agent serves', async (t) => {
  const a = agent();
  const probes = [a.livenessProbe!.httpGet, a.readinessProbe!.httpGet];
  t.deepEqual(
    probes.map((p) => p.path),
    ['/healthz', '/readyz'],
  );
  // The port is the one netfence.yaml in the ConfigMap tells the agent to listen on.
  const cm = one('ConfigMap') as unknown as { data: Record<string, string> };
  const snap = buildSnapshot(parseYamlText(cm.data['netfence.yaml'], 'netfence.yaml').objects);
  t.deepEqual(snap.errors, []);
  const [host, port] = snap.config.metricsAddress.split(':');
  for (const p of probes) t.deepEqual([p.host, p.port], [host, Number(port)]);

  // And the agent's HTTP server answers those paths (not 404).
  const status = { ready: false, generation: 0, node: 'n1', endpoints: 0, failed: [], unhooked: [], errors: [] };
  const server = await startHttp('127.0.0.1:0', () => status, new Registry());
  t.teardown(() => server.close());
  const addr = server.address() as AddressInfo;
  for (const p of probes) {
    const code = await new Promise<number>((resolve, reject) =>
      http
        .get({ host: '127.0.0.1', port: addr.port, path: p.path }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
        .on('error', reject),
    );
    t.not(code, 404, p.path);
  }
});

test('the agent container passes only real `netfence agent` flags, each with its value, and runs in-cluster', (t) => {
  const a = agent();
  t.is(a.command?.[a.command.length - 1], '/opt/netfence/dist/src/cli/main.js');
  const [sub, ...args] = a.args ?? [];
  t.is(sub, 'agent');
  const options = agentCommand().options;
  const flags: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const opt = options.find((o) => o.long === args[i]);
    if (!opt) {
      t.fail(`DaemonSet passes ${args[i]}: not an option of netfence agent (${options.map((o) => o.long).join(' ')})`);
      continue;
    }
    const takesValue = opt.required || opt.optional;
    if (takesValue) t.truthy(args[i + 1] && !args[i + 1].startsWith('--'), `${args[i]} needs a value`);
    flags[opt.attributeName()] = takesValue ? args[++i] : 'true';
  }
  t.deepEqual(Object.keys(flags).sort(), ['config', 'procRoot', 'socket']);
  // No --state and no --kubeconfig: the Kubernetes source with the pod's service account.
  t.deepEqual(chooseSource(flags, { KUBERNETES_SERVICE_HOST: '10.96.0.1' }), {
    kind: 'kubernetes',
    configFile: '/etc/netfence/netfence.yaml',
  });
  // The config file is the ConfigMap's key, mounted where --config points.
  const mount = a.volumeMounts?.find((m) => m.name === 'config');
  t.is(path.join(mount?.mountPath ?? '', 'netfence.yaml'), flags.config);
  t.truthy((one('ConfigMap') as unknown as { data: Record<string, string> }).data['netfence.yaml']);
  const install = podSpec().initContainers!.find((c) => c.name === 'install-cni')!;
  t.is(
    install.command?.[install.command.indexOf('--agent-socket') + 1],
    flags.socket,
    'the CNI plugin asks the socket the agent serves',
  );
});

test('the agent runs unprivileged with exactly BPF, NET_ADMIN, SYS_ADMIN, PERFMON', (t) => {
  const sc = agent().securityContext!;
  t.not(sc.privileged, true);
  t.deepEqual([...(sc.capabilities?.add ?? [])].sort(), ['BPF', 'NET_ADMIN', 'PERFMON', 'SYS_ADMIN']);
  t.deepEqual(sc.capabilities?.drop, ['ALL']);
  const spec = podSpec();
  t.true(spec.hostNetwork);
  t.false(spec.hostPID);
  t.is(spec.serviceAccountName, 'netfence');
  const nodeName = agent().env?.find((e) => e.name === 'NODE_NAME');
  t.is(nodeName?.valueFrom?.fieldRef?.fieldPath, 'spec.nodeName');
});

test('the DaemonSet mounts what the agent and the CNI installer touch', (t) => {
  const spec = podSpec();
  const hostPathOf = (c: Container, mountPath: string) => {
    const m = c.volumeMounts?.find((v) => v.mountPath === mountPath);
    return (
      m && { hostPath: spec.volumes.find((v) => v.name === m.name)?.hostPath?.path, propagation: m.mountPropagation }
    );
  };
  for (const p of ['/sys/fs/bpf', '/run/netfence', '/etc/cni/net.d', '/opt/cni/bin']) {
    t.is(hostPathOf(agent(), p)?.hostPath, p, p);
  }
  // Not at /proc/sys/net: runc refuses mounts inside /proc (npm run test:image runs it).
  t.is(hostPathOf(agent(), '/host/proc/sys/net')?.hostPath, '/proc/sys/net');
  const args = agent().args ?? [];
  t.is(args[args.indexOf('--proc-root') + 1], '/host/proc');
  // bpffs is mounted (if needed) with Bidirectional propagation by a privileged init container.
  const mount = spec.initContainers!.find((c) => c.volumeMounts?.some((v) => v.mountPath === '/sys/fs/bpf'))!;
  t.deepEqual(hostPathOf(mount, '/sys/fs/bpf'), { hostPath: '/sys/fs/bpf', propagation: 'Bidirectional' });
  t.true(mount.securityContext?.privileged);
  const install = spec.initContainers!.find((c) => c.name === 'install-cni')!;
  t.is(hostPathOf(install, '/host/opt/cni/bin')?.hostPath, '/opt/cni/bin');
  t.is(hostPathOf(install, '/host/etc/cni/net.d')?.hostPath, '/etc/cni/net.d');
});

test('RBAC grants get/list/watch on exactly the watched resources', (t) => {
  const role = one('ClusterRole') as unknown as {
    rules: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }>;
  };
  const granted = new Set<string>();
  for (const r of role.rules) {
    t.deepEqual([...r.verbs].sort(), ['get', 'list', 'watch']);
    for (const g of r.apiGroups) for (const res of r.resources) granted.add(`${g}/${res}`);
  }
  const watched = new Set(WATCHED_RESOURCES.map((r) => `${r.group}/${r.resource}`));
  t.deepEqual([...granted].sort(), [...watched].sort());
  const binding = one('ClusterRoleBinding') as unknown as {
    roleRef: { name: string };
    subjects: Array<{ name: string; namespace: string }>;
  };
  t.is(binding.roleRef.name, 'netfence');
  const sa = one('ServiceAccount');
  t.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: sa.metadata.namespace }]);
});

interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
}

/** Structural: every node has a type, and objects (other than the root's metadata, which
 *  the API server fills in) list properties or preserve unknown fields, so nothing a
 *  policy needs is pruned. */
function structuralProblems(s: Schema, at = ''): string[] {
  const out: string[] = [];
  if (!s.type) out.push(`${at || '<root>'}: no type`);
  if (s.type === 'object' && !s.properties && !s['x-kubernetes-preserve-unknown-fields'] && at !== '.metadata') {
    out.push(`${at}: object without properties or x-kubernetes-preserve-unknown-fields`);
  }
  for (const [k, v] of Object.entries(s.properties ?? {})) out.push(...structuralProblems(v, `${at}.${k}`));
  if (s.type === 'array') {
    if (!s.items) out.push(`${at}: array without items`);
    else out.push(...structuralProblems(s.items, `${at}[]`));
  }
  return out;
}

test('deploy/crds ships the CRD of every kind the registry says netfence ships, matching its watched resource', (t) => {
  type Crd = Doc & {
    spec: {
      group: string;
      scope: string;
      names: { kind: string; plural: string };
      versions: Array<{ name: string; served: boolean; storage: boolean; schema: { openAPIV3Schema: Schema } }>;
    };
  };
  const crds = docs.filter((d) => d.kind === 'CustomResourceDefinition') as Crd[];
  const shipped = new Set(
    READ_KINDS.filter((k) => k.crd === 'netfence').map((k) => `${k.resource}.${groupOf(k.apiVersion)}`),
  );
  const wanted = WATCHED_RESOURCES.filter((r) => shipped.has(resourceId(r)));
  t.is(wanted.length, shipped.size);
  t.deepEqual(crds.map((c) => c.metadata.name).sort(), [...shipped].sort(), 'no other CRD');
  for (const r of wanted) {
    const crd = crds.find((c) => c.spec.group === r.group && c.spec.names.plural === r.resource);
    if (!crd) {
      t.fail(`no CRD for ${r.resource}.${r.group}`);
      continue;
    }
    t.is(crd.metadata.name, `${r.resource}.${r.group}`);
    t.is(crd.spec.names.kind, r.kind);
    t.is(crd.spec.scope, r.namespaced ? 'Namespaced' : 'Cluster');
    const v = crd.spec.versions.find((x) => x.name === r.version);
    t.truthy(v?.served && v.storage, `${r.version} not served+stored`);
    t.deepEqual(structuralProblems(v!.schema.openAPIV3Schema), [], crd.metadata.name);
  }
});

test('the Dockerfile builds in one stage and runs with the runtime libraries in another', (t) => {
  const text = fs.readFileSync(path.join(deployDir, 'Dockerfile'), 'utf8');
  const stages = text.split(/^FROM /m).slice(1);
  t.is(stages.length, 2);
  for (const pkg of ['clang', 'libbpf-dev', 'libnl-route-3-dev', 'npm ci', 'npm run build'])
    t.true(stages[0].includes(pkg), pkg);
  for (const pkg of ['libbpf1', 'libnl-route-3-200', 'dist', 'bpf/.output', 'netfence_native.node'])
    t.true(stages[1].includes(pkg), pkg);
});
