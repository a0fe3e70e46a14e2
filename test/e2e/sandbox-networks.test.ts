// A CNI endpoint is (pod, interface, network): one pod sandbox attached to two networks the
// way Multus does it, each a conflist of Debian's ptp + host-local chained with netfence-cni
// (the shipped bundle), run as libcni runs them, against a real agent (state-directory
// source). eth0 is on "routed" (the pod network), net1 on "blue" (NAD demo/blue). Pod
// demo/web accepts TCP 80 from a only on eth0 (NetworkPolicy) and from b only on net1
// (MultiNetworkPolicy): each interface enforced on its own, neither replacing the other,
// also after an agent restart.
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { AgentStatus } from '../../src/agent/agent';
import { sandboxesFilePath } from '../../src/agent/sandboxes';
import { labScript } from '../../src/lab/exec';
import { pluginBinDir } from '../helpers/cni-bin';
import {
  CniChain,
  REFERENCE_PLUGINS_DIR,
  createNetns,
  execPlugin,
  kubeletArgs,
  type ExecOptions,
  type RuntimeConf,
} from '../helpers/libcni';
import { AgentLab, allowFrom, demoPodsAbc, labConfig } from './helpers/agent-lab';

const BLUE_NAD = `
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: { name: blue, namespace: demo }
spec: { config: '{"cniVersion":"1.0.0","name":"blue","type":"ptp"}' }
`;

/** On net1 (demo/blue) web accepts TCP 80 from b only. */
const WEB_NET1_FROM_B = `
apiVersion: k8s.cni.cncf.io/v1beta1
kind: MultiNetworkPolicy
metadata: { name: web-from-b, namespace: demo, annotations: { k8s.v1.cni.cncf.io/policy-for: demo/blue } }
spec:
  podSelector: { matchLabels: { app: web } }
  policyTypes: [Ingress]
  ingress: [{ from: [{ ipBlock: { cidr: 10.244.1.3/32 } }], ports: [{ port: 80 }] }]
`;

/** demo/web on n1 with no address yet (the API publishes it after ADD). */
const WEB =
  'apiVersion: v1\nkind: Pod\nmetadata: { name: web, namespace: demo, labels: { app: web } }\nspec: { nodeName: n1, containers: [{ name: c, image: x, ports: [{ containerPort: 80 }] }] }\n';

let lab: AgentLab;
let exec: ExecOptions;
let routed: CniChain;
let blue: CniChain;
let eth0: RuntimeConf;
let net1: RuntimeConf;
const ips: { eth0?: string; net1?: string } = {};
let removeNetns: (() => void) | undefined;
let server: ChildProcess | undefined;

/** A ptp network chained with netfence-cni, its own subnet and IPAM directory. */
function network(name: string, subnet: string, routes: { dst: string }[]): CniChain {
  const ipam = {
    type: 'host-local',
    ranges: [[{ subnet }]],
    routes,
    dataDir: path.join(lab.state.workDir, `ipam-${name}`),
  };
  return new CniChain(
    {
      cniVersion: '1.0.0',
      name,
      plugins: [
        { type: 'ptp', ipMasq: false, ipam },
        { type: 'netfence-cni', agentSocket: lab.cniSocket(), agentTimeoutMs: 15_000 },
      ],
    },
    exec,
  );
}

test.before(async () => {
  lab = await AgentLab.up('sbxnet', { 'pods.yaml': demoPodsAbc(), 'netfence.yaml': labConfig() });
  lab.write('web.yaml', WEB);
  lab.write('nad.yaml', BLUE_NAD);
  lab.write('web-from-a.yaml', allowFrom('web', 'a'));
  lab.write('mnp.yaml', WEB_NET1_FROM_B);
  const bin = pluginBinDir(path.join(lab.state.workDir, 'cni-bin'));
  exec = { nodeNetns: `/run/netns/${lab.node().netns}`, path: [bin, REFERENCE_PLUGINS_DIR] };
  routed = network('routed', '10.244.7.0/24', [{ dst: '0.0.0.0/0' }]);
  blue = network('blue', '10.244.8.0/24', []);
  const ns = `nf-sbxnet-${process.pid}`;
  removeNetns = createNetns([ns]);
  // Requests reach net1 and are answered through eth0 (the default route): not a martian.
  await lab.exec(ns, ['sysctl', '-qw', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0']);
  const args = kubeletArgs({ namespace: 'demo', name: 'web' }, 'c1');
  eth0 = { containerId: 'c1', netns: `/run/netns/${ns}`, ifName: 'eth0', args };
  net1 = { ...eth0, ifName: 'net1' };
  await lab.startAgent();
});

test.after.always(async () => {
  server?.kill();
  removeNetns?.();
  await lab?.down();
});

const addressOf = (result: unknown): string => (result as { ips: { address: string }[] }).ips[0].address.split('/')[0];
const fromAB = (ip: string) => [
  { from: 'demo/a', to: ip, port: '80/TCP' },
  { from: 'demo/b', to: ip, port: '80/TCP' },
];
const status = async (): Promise<AgentStatus> => JSON.parse(await lab.http('/readyz')) as AgentStatus;

test.serial(
  'one pod on two networks: eth0 and net1 are two endpoints, each enforced by its own policies when its ADD returns',
  async (t) => {
    ips.eth0 = addressOf(await routed.add(eth0));
    ips.net1 = addressOf(await blue.add(net1));
    server = spawn(
      'ip',
      ['netns', 'exec', path.basename(eth0.netns), process.execPath, labScript('server'), 'demo/web', '80/TCP'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve) => server!.stdout!.once('data', () => resolve()));
    t.deepEqual(await lab.probe(fromAB(ips.eth0)), ['allow', 'deny'], 'eth0: a allowed, b denied (NetworkPolicy)');
    t.deepEqual(
      await lab.probe(fromAB(ips.net1)),
      ['deny', 'allow'],
      'net1: a denied, b allowed (MultiNetworkPolicy on demo/blue)',
    );
    await routed.check(eth0);
    await blue.check(net1);
    const saved = JSON.parse(fs.readFileSync(sandboxesFilePath(lab.node().bpffsRoot), 'utf8')) as {
      version: number;
      sandboxes: { ifName: string; network?: string }[];
    };
    t.is(saved.version, 2);
    t.deepEqual(saved.sandboxes.map((s) => `${s.ifName} ${s.network}`).sort(), ['eth0 routed', 'net1 blue']);
    const adds = lab.agentRecords().filter((r) => r.msg === 'cni add');
    t.deepEqual(
      adds.map((r) => `${r.ifName} ${r.network}`),
      ['eth0 routed', 'net1 blue'],
      'netfence-cni sent the network name',
    );
  },
);

test.serial('a late DEL for an old container on net1 changes nothing', async (t) => {
  const conf = { ...blue.list.plugins[1], cniVersion: '1.0.0', name: 'blue' };
  await execPlugin(exec, 'netfence-cni', 'DEL', conf, {
    ...net1,
    containerId: 'c0',
    netns: '',
    args: kubeletArgs({ namespace: 'demo', name: 'web' }, 'c0'),
  });
  t.true(
    lab
      .agentRecords()
      .some((r) => r.msg === 'cni del ignored: container c0 is not the current sandbox of demo/web on net1 (c1)'),
    'the ignored DEL is logged',
  );
  await lab.ready();
  t.deepEqual(await lab.probe(fromAB(ips.eth0!)), ['allow', 'deny']);
  t.deepEqual(await lab.probe(fromAB(ips.net1!)), ['deny', 'allow']);
  await blue.check(net1);
});

test.serial('SIGTERM and restart: both interfaces are enforced again before the agent reports ready', async (t) => {
  await lab.kill('SIGTERM');
  await lab.startAgent();
  t.true(lab.agentRecords().some((r) => r.msg === 'CNI sandboxes loaded' && r.sandboxes === 2));
  t.deepEqual(await lab.probe(fromAB(ips.eth0!)), ['allow', 'deny']);
  t.deepEqual(await lab.probe(fromAB(ips.net1!)), ['deny', 'allow']);
  await routed.check(eth0);
  await blue.check(net1);
});

test.serial('DEL of net1 forgets that endpoint only: eth0 stays enforced', async (t) => {
  const before = (await status()).endpoints;
  await blue.del(net1);
  t.true(lab.agentRecords().some((r) => r.msg === 'cni del' && r.ifName === 'net1' && r.outcome === 'deleted'));
  let after = before;
  for (const deadline = Date.now() + 10_000; after !== before - 1 && Date.now() < deadline;) {
    await new Promise((r) => setTimeout(r, 100));
    after = (await status()).endpoints;
  }
  t.is(after, before - 1, 'the net1 endpoint is gone, the others stay');
  t.deepEqual(await lab.probe(fromAB(ips.eth0!)), ['allow', 'deny'], 'eth0 still enforced');
  await routed.check(eth0);
  const saved = JSON.parse(fs.readFileSync(sandboxesFilePath(lab.node().bpffsRoot), 'utf8')) as {
    sandboxes: { ifName: string }[];
  };
  t.deepEqual(
    saved.sandboxes.map((s) => s.ifName),
    ['eth0'],
  );
});
