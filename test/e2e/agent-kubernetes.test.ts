// `netfence agent --kubeconfig` on a lab node: the fake apiserver (the real list/watch
// protocol) runs inside the node's netns, serving the lab's Namespace, Node and Pods and
// the NetworkPolicies the tests add. The agent is not ready and enforces nothing until
// every resource listed once; a NetworkPolicy ADDED over the watch isolates a pod for
// real (the drop's flow record names it), DELETED reopens it; a 410 Gone relists, and
// enforcement follows the relisted state. A pod the API lists without addresses yet (as
// before its CNI ADD returns) is enforced from the addresses in the ADD request. An
// invalid object keeps its last valid version while the rest of the API's state applies.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { askAgent } from '../../src/cni/agent-client';
import { native } from '../../src/datapath/native';
import { WATCHED_RESOURCES } from '../../src/sources/kubernetes';
import { apiVersionOf, collectionPath } from '../../src/sources/kubernetes-resources';
import type { Obj } from '../helpers/fake-apiserver';
import { AgentLab, demoPod, labConfig, NODE_N1 } from './helpers/agent-lab';
import { ApiServerProcess } from './helpers/apiserver-process';

const PODS = '/api/v1/pods';
const NETPOL = '/apis/networking.k8s.io/v1/networkpolicies';

const CLUSTER = [
  'apiVersion: v1\nkind: Namespace\nmetadata: { name: demo, labels: { kubernetes.io/metadata.name: demo } }\n',
  demoPod('a', '10.244.1.2'),
  demoPod('b', '10.244.1.3'),
  NODE_N1,
].join('---\n');
// In the lab (netns, veth, route) with its address; in the API without one, as a pod whose
// CNI ADD is running.
const LATE = demoPod('late', '10.244.1.5');
const CONFIG = labConfig();

const ISOLATE_B: Obj = {
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name: 'isolate-b', namespace: 'demo' },
  spec: { podSelector: { matchLabels: { app: 'b' } }, policyTypes: ['Ingress'] },
};

const A_TO_B = { from: 'demo/a', to: 'demo/b', port: '80/TCP' };
const B_TO_A = { from: 'demo/b', to: 'demo/a', port: '80/TCP' };

let lab: AgentLab;
let api: ApiServerProcess;

/** Waits until the agent enforces exactly what the fake apiserver holds now. */
const synced = async () => lab.readyFor(await api.version());

test.before(async () => {
  lab = await AgentLab.up('k8s', { 'cluster.yaml': CLUSTER, 'late.yaml': LATE, 'netfence.yaml': CONFIG });
  api = await ApiServerProcess.start(lab.node().netns);
  for (const doc of parseAllDocuments(CLUSTER).map((d) => d.toJS() as Obj)) {
    const r = WATCHED_RESOURCES.find((x) => apiVersionOf(x) === doc.apiVersion && x.kind === doc.kind)!;
    await api.put(collectionPath(r), doc);
  }
});
test.after.always(async () => {
  await api?.close();
  await lab?.down();
});

test.serial(
  'not ready and nothing enforced until every resource has listed; then the listed state is enforced',
  async (t) => {
    const dir = lab.state.workDir;
    fs.writeFileSync(path.join(dir, 'kubeconfig'), api.kubeconfig());
    fs.writeFileSync(path.join(dir, 'netfence.yaml'), CONFIG);
    await api.put(NETPOL, ISOLATE_B);
    await api.hold(PODS); // every other resource lists; the pods list hangs
    lab.spawnAgent('n1', ['--kubeconfig', path.join(dir, 'kubeconfig'), '--config', path.join(dir, 'netfence.yaml')]);

    const readyz = async (): Promise<{ ready: boolean; generation: number } | undefined> => {
      try {
        return JSON.parse(await lab.http('/readyz')) as { ready: boolean; generation: number };
      } catch {
        return undefined; // not listening yet
      }
    };
    for (
      const deadline = Date.now() + 20_000;
      (await api.counts(NETPOL)).lists === 0 || (await readyz()) === undefined;
    ) {
      if (Date.now() > deadline) t.fail(`agent did not list or serve /readyz in 20 s:\n${lab.agentLog().slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 1000)); // well past the source's debounce
    t.like(await readyz(), { ready: false, generation: 0 }, 'not ready while the pods list is outstanding');
    const eps = native.mapOpenPinned(path.join(lab.node().bpffsRoot, 'nf_endpoints'));
    t.teardown(() => native.closeFd(eps.fd));
    t.deepEqual(native.mapKeys(eps.fd), [], 'no endpoint programmed from a partial list');

    await api.release(PODS);
    const ready = await synced();
    t.true(ready.generation >= 1);
    t.true(native.mapKeys(eps.fd).length >= 2, 'pods a and b are endpoints now');
    t.deepEqual(await lab.probe([A_TO_B, B_TO_A]), ['deny', 'allow'], 'isolate-b from the initial list');
    t.regex(lab.agentLog(), /"source":"kubernetes API \(/);
  },
);

test.serial('a NetworkPolicy DELETED over the watch reopens the pod, ADDED isolates it again', async (t) => {
  const lists = (await api.counts(NETPOL)).lists;
  await api.remove(NETPOL, 'isolate-b', 'demo');
  const open = await synced();
  t.deepEqual(await lab.probe([A_TO_B, B_TO_A]), ['allow', 'allow']);
  await api.put(NETPOL, ISOLATE_B);
  const closed = await synced();
  t.true(closed.generation > open.generation);
  t.deepEqual(await lab.probe([A_TO_B, B_TO_A]), ['deny', 'allow']);
  t.is((await api.counts(NETPOL)).lists, lists, 'changes came over the watch, not by relisting');
  const flows = lab
    .agentRecords()
    .filter((r) => r.msg === 'flow')
    .map((r) => r.flow as { destination: { pod_name?: string }; policy?: string; rule?: string });
  t.like(
    flows.find((f) => f.destination.pod_name === 'b'),
    { policy: 'isolation (NetworkPolicy demo/isolate-b)', rule: 'isolation' },
    'the drop names the isolating policy',
  );
});

test.serial('410 Gone on the watch relists; enforcement follows the relisted state', async (t) => {
  const before = await api.counts(NETPOL);
  // Deleted without a watch event, history compacted, the open watch told its version is gone:
  // only a relist can learn that isolate-b went away.
  await api.remove(NETPOL, 'isolate-b', 'demo', true);
  await api.compact();
  await api.expire(NETPOL);
  await synced();
  t.true((await api.counts(NETPOL)).lists > before.lists, 'the source relisted network policies');
  t.deepEqual(await lab.probe([A_TO_B, B_TO_A]), ['allow', 'allow'], 'the relisted state (no isolate-b) is enforced');

  await api.put(NETPOL, ISOLATE_B);
  await synced();
  t.deepEqual(await lab.probe([A_TO_B]), ['deny'], 'the watch after the relist delivers new events');
});

test.serial(
  'CNI ADD enforces a pod the API lists without addresses yet, from the addresses in the request',
  async (t) => {
    const { status: _none, ...late } = parseAllDocuments(LATE)[0].toJS() as Obj;
    await api.put(PODS, late);
    await api.put(NETPOL, {
      ...ISOLATE_B,
      metadata: { name: 'isolate-late', namespace: 'demo' },
      spec: { podSelector: { matchLabels: { app: 'late' } }, policyTypes: ['Ingress'] },
    });
    await synced();
    t.deepEqual(
      await lab.probe([{ from: 'demo/a', to: 'demo/late', port: '80/TCP' }]),
      ['allow'],
      'no addresses known: not enforced yet',
    );

    const req = {
      containerId: 'late-1',
      netns: `/run/netns/${lab.podNetns('demo/late')}`,
      ifName: 'eth0',
      podNamespace: 'demo',
      podName: 'late',
    };
    const prevResult = {
      cniVersion: '1.0.0',
      interfaces: [{ name: 'eth0', sandbox: req.netns }],
      ips: [{ address: '10.244.1.5/24', interface: 0 }],
    };
    t.deepEqual(await askAgent(lab.cniSocket(), { op: 'add', ...req, prevResult }, 10_000), { ok: true });
    t.deepEqual(
      await lab.probe([{ from: 'demo/a', to: 'demo/late', port: '80/TCP' }]),
      ['deny'],
      'enforced as soon as ADD returned',
    );
    t.deepEqual(await askAgent(lab.cniSocket(), { op: 'check', ...req, prevResult }, 10_000), { ok: true });

    // The kubelet publishes the address; the API's state alone keeps the pod enforced.
    await api.put(PODS, { ...late, status: { podIPs: [{ ip: '10.244.1.5' }] } });
    await synced();
    t.deepEqual(await askAgent(lab.cniSocket(), { op: 'del', ...req }, 10_000), { ok: true });
    await api.put(PODS, {
      ...late,
      status: { podIPs: [{ ip: '10.244.1.5' }] },
      metadata: { ...late.metadata, annotations: { touched: 'yes' } },
    });
    await synced();
    t.deepEqual(await lab.probe([{ from: 'demo/a', to: 'demo/late', port: '80/TCP' }]), ['deny']);
  },
);

test.serial('an invalid object over the watch keeps its last valid version; the node does not freeze', async (t) => {
  t.deepEqual(await lab.probe([A_TO_B, { from: 'demo/a', to: 'demo/late', port: '80/TCP' }]), ['deny', 'deny']);
  // One burst: isolate-b MODIFIED into an invalid policy (dropping it would reopen b) and
  // isolate-late DELETED (applies).
  const isolateB = (ingress: unknown[]): Obj => ({
    ...ISOLATE_B,
    spec: { podSelector: { matchLabels: { app: 'b' } }, policyTypes: ['Ingress'], ingress },
  });
  await api.put(NETPOL, isolateB([{ from: [{ ipBlock: { cidr: '10.0.0.0/33' } }] }]));
  await api.remove(NETPOL, 'isolate-late', 'demo');
  const ready = await synced(); // the agent enforces the API's newest state, bad object and all
  const errors = ready.body.errors as string[];
  t.is(errors.length, 1, JSON.stringify(errors));
  t.regex(errors[0], /NetworkPolicy demo\/isolate-b: spec\.ingress\[0\]\.from\[0\]\.ipBlock\.cidr: /);
  t.deepEqual(
    await lab.probe([A_TO_B, { from: 'demo/a', to: 'demo/late', port: '80/TCP' }]),
    ['deny', 'allow'],
    'isolate-b at its last valid version; isolate-late gone',
  );

  await api.put(NETPOL, isolateB([{ from: [{ podSelector: { matchLabels: { app: 'a' } } }] }]));
  const fixed = await synced();
  t.deepEqual(fixed.body.errors, []);
  t.deepEqual(await lab.probe([A_TO_B]), ['allow'], 'the fixed version applies');
});
