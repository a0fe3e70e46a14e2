// The CNI lifecycle keyed by sandbox, with a real agent (state-directory source) and
// Debian's reference plugins chained with netfence-cni the way libcni runs a conflist:
// ptp + host-local + netfence-cni in the lab's node netns. Pod demo/web allows TCP 80 from
// app=a only; a is the allowed peer, b the denied one. Its sandboxes are made here, not by
// the lab: the agent learns web's interface and address from CNI alone. a's egress allows
// only app=web, so a reaches web only while the agent knows web's current address.
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { sandboxesFilePath } from '../../src/agent/sandboxes';
import { askAgent } from '../../src/cni/agent-client';
import { labScript } from '../../src/lab/exec';
import { AgentLab, DEMO_NAMESPACE, allowFrom, NODE_N1, demoPod, labConfig } from './helpers/agent-lab';
import { pluginBinDir } from '../helpers/cni-bin';
import {
  CniChain,
  CniError,
  REFERENCE_PLUGINS_DIR,
  createNetns,
  kubeletArgs,
  type NetConfList,
  type RuntimeConf,
} from '../helpers/libcni';

/** a may only reach app=web: its egress passes only if web's current address is web's. */
const A_TO_WEB_ONLY = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: a-to-web, namespace: demo }
spec:
  podSelector: { matchLabels: { app: a } }
  policyTypes: [Egress]
  egress: [{ to: [{ podSelector: { matchLabels: { app: web } } }], ports: [{ port: 80 }] }]
`;

/** demo/web on n1, with the addresses the source lists for it (none: the API has not published them yet). */
const web = (ips: string[] = []): string =>
  `apiVersion: v1\nkind: Pod\nmetadata: { name: web, namespace: demo, labels: { app: web } }\nspec: { nodeName: n1, containers: [{ name: c, image: x, ports: [{ containerPort: 80 }] }] }\n` +
  (ips.length ? `status: { podIPs: [${ips.map((ip) => `{ ip: ${ip} }`).join(', ')}] }\n` : '');

let lab: AgentLab;
let chain: CniChain;
const netnsCleanups: (() => void)[] = [];
const servers: ChildProcess[] = [];

test.before(async () => {
  lab = await AgentLab.up('sbx', {
    'ns.yaml': [DEMO_NAMESPACE, demoPod('a', '10.244.1.2'), demoPod('b', '10.244.1.3'), NODE_N1].join('---\n'),
    'netfence.yaml': labConfig(),
  });
  lab.write('web.yaml', web());
  lab.write('web-from-a.yaml', allowFrom('web', 'a'));
  lab.write('a-to-web.yaml', A_TO_WEB_ONLY);
  // netfence-cni as a runtime finds it: the installed executable on CNI_PATH.
  const bin = pluginBinDir(path.join(lab.state.workDir, 'cni-bin'));
  const list: NetConfList = {
    cniVersion: '1.0.0',
    name: 'routed',
    plugins: [
      {
        type: 'ptp',
        ipMasq: false,
        ipam: {
          type: 'host-local',
          ranges: [[{ subnet: '10.244.7.0/24' }]],
          routes: [{ dst: '0.0.0.0/0' }],
          dataDir: path.join(lab.state.workDir, 'ipam'),
        },
      },
      { type: 'netfence-cni', agentSocket: lab.cniSocket(), agentTimeoutMs: 15_000 },
    ],
  };
  chain = new CniChain(list, { nodeNetns: `/run/netns/${lab.node().netns}`, path: [bin, REFERENCE_PLUGINS_DIR] });
  await lab.startAgent();
});

test.after.always(async () => {
  for (const s of servers) s.kill();
  for (const remove of netnsCleanups) remove();
  await lab?.down();
});

/** A new pod sandbox (netns) for demo/web with container ID `id`. */
function sandbox(id: string): RuntimeConf {
  const ns = `nf-sbx-${id}-${process.pid}`;
  netnsCleanups.push(createNetns([ns]));
  return {
    containerId: id,
    netns: `/run/netns/${ns}`,
    ifName: 'eth0',
    args: kubeletArgs({ namespace: 'demo', name: 'web' }, id),
  };
}

/** ADD through the chain; the web server runs in the sandbox once ADD returned; its address. */
async function add(rt: RuntimeConf): Promise<string> {
  const result = (await chain.add(rt)) as { ips: { address: string }[] };
  const server = spawn(
    'ip',
    ['netns', 'exec', path.basename(rt.netns), process.execPath, labScript('server'), 'demo/web', '80/TCP'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  servers.push(server);
  await new Promise<void>((resolve) => server.stdout!.once('data', () => resolve()));
  return result.ips[0].address.split('/')[0];
}

const fromAB = (ip: string) => [
  { from: 'demo/a', to: ip, port: '80/TCP' },
  { from: 'demo/b', to: ip, port: '80/TCP' },
];

let first: RuntimeConf;
let second: RuntimeConf;
let secondIp: string;

test.serial('ptp chain: the pod is enforced when ADD returns, on the host veth ptp made; CHECK passes', async (t) => {
  first = sandbox('c1');
  const ip = await add(first);
  t.deepEqual(
    await lab.probe(fromAB(ip)),
    ['allow', 'deny'],
    'allowed peer allowed, denied peer denied at the moment ADD returned',
  );
  await chain.check(first);
  const add1 = lab.agentRecords().find((r) => r.msg === 'cni add' && r.containerId === 'c1');
  t.regex(String(add1?.hostIf), /^veth/, 'the host interface from the ptp result');
});

test.serial(
  're-created sandbox with a new IP while the source lists the old one: the new IP wins; a late DEL of the old container changes nothing',
  async (t) => {
    const oldIp = (chain.cached(first) as { ips: { address: string }[] }).ips[0].address.split('/')[0];
    lab.write('web.yaml', web([oldIp])); // the API still shows the first sandbox's address
    await lab.ready();
    second = sandbox('c2');
    secondIp = await add(second);
    t.not(secondIp, oldIp);
    t.deepEqual(
      await lab.probe(fromAB(secondIp)),
      ['allow', 'deny'],
      'the new sandbox is enforced on its prevResult address',
    );
    // The kubelet's late DEL of the replaced sandbox (its netns still there).
    await chain.del(first);
    await lab.ready();
    t.true(
      lab
        .agentRecords()
        .some(
          (r) =>
            typeof r.msg === 'string' &&
            r.msg.startsWith('cni del ignored: container c1 is not the current sandbox of demo/web on eth0 (c2)'),
        ),
      'the ignored DEL is logged',
    );
    t.deepEqual(await lab.probe(fromAB(secondIp)), ['allow', 'deny'], 'still enforced after the late DEL');
    await chain.check(second);
  },
);

test.serial(
  'SIGTERM and restart: the CNI-learned endpoint is enforced again before the agent reports ready',
  async (t) => {
    await lab.kill('SIGTERM');
    const restarted = await lab.startAgent();
    t.true(restarted.ready.generation >= 1);
    t.deepEqual(await lab.probe(fromAB(secondIp)), ['allow', 'deny'], 'enforced on the address only CNI told');
    t.true(lab.agentRecords().some((r) => r.msg === 'CNI sandboxes loaded' && r.sandboxes === 1));
    await chain.check(second);
  },
);

test.serial(
  'DEL of the current sandbox forgets it; a pod with no enforceable interface fails ADD naming why, on /readyz and counted',
  async (t) => {
    await chain.del(second);
    t.true(lab.agentRecords().some((r) => r.msg === 'cni del' && r.containerId === 'c2' && r.outcome === 'deleted'));
    const third = sandbox('c3');
    // The API now lists an address nothing routes to, and the sandbox's interface is not a veth:
    // nothing to enforce on (macvlan stands in for any layout without a host-side veth).
    lab.write('web.yaml', web(['10.244.7.250']));
    await lab.ready();
    const macvlanChain = new CniChain(
      {
        ...chain.list,
        plugins: [
          {
            type: 'macvlan',
            master: 'eth0',
            mode: 'bridge',
            ipam: {
              type: 'host-local',
              ranges: [[{ subnet: '10.244.6.0/24' }]],
              dataDir: path.join(lab.state.workDir, 'ipam-mv'),
            },
          },
          chain.list.plugins[1],
        ],
      },
      {
        nodeNetns: `/run/netns/${lab.node().netns}`,
        path: [path.join(lab.state.workDir, 'cni-bin'), REFERENCE_PLUGINS_DIR],
      },
    );
    const addStarted = Date.now();
    const err = await t.throwsAsync(macvlanChain.add(third), { instanceOf: CniError });
    t.regex(err!.message, /program pod demo\/web: discover pod demo\/web: no \/32 or \/128 route to 10\.244\.6\.\d+/);
    t.regex(
      err!.message,
      /find host interface of eth0 in \/run\/netns\/nf-sbx-c3-\d+: layout macvlan \(eth0\) cannot be enforced on: supported: a host-side veth per pod/,
    );
    t.true(Date.now() - addStarted < 4000, 'an unsupported layout fails at once, not after the 5 s wait');
    const status = JSON.parse(await lab.http('/readyz')) as { errors: string[] };
    t.true(
      status.errors.some((e) => e.startsWith('discover pod demo/web: ')),
      JSON.stringify(status.errors),
    );
    t.true(
      lab
        .agentRecords()
        .some((r) => r.level === 40 && typeof r.msg === 'string' && r.msg.startsWith('discover pod demo/web: ')),
      'logged at warn',
    );
    t.regex(await lab.http('/metrics'), /netfence_errors_total\{stage="discover"\} [1-9]/);
    await macvlanChain.del(third);
  },
);

test.serial('ADD of a pod the state does not list, or of no pod at all, fails naming that', async (t) => {
  const ghost = { ...sandbox('c4'), args: kubeletArgs({ namespace: 'demo', name: 'ghost' }, 'c4') };
  const err = await t.throwsAsync(chain.add(ghost), { instanceOf: CniError });
  t.regex(
    err!.message,
    /program pod demo\/ghost: no enforced endpoint: the state source does not list pod demo\/ghost/,
  );
  await chain.del(ghost);
  const unnamed = await askAgent(
    lab.cniSocket(),
    { op: 'add', containerId: 'c9', netns: ghost.netns, ifName: 'eth0', podNamespace: '', podName: '' },
    5000,
  );
  t.false(unnamed.ok);
  t.regex(
    (unnamed as { error: string }).error,
    /cni add container c9: no pod named \(CNI_ARGS needs K8S_POD_NAMESPACE and K8S_POD_NAME\)$/,
  );
});

test.serial(
  'a sandbox that went away without a DEL (netns and host veth gone) is forgotten, on disk too',
  async (t) => {
    const fifth = sandbox('c5');
    await add(fifth);
    const file = sandboxesFilePath(lab.node().bpffsRoot);
    t.true(fs.readFileSync(file, 'utf8').includes('"containerId":"c5"'));
    servers.pop()!.kill();
    netnsCleanups.pop()!(); // the runtime lost it: the veth pair dies with the netns
    const forgotten = (): boolean =>
      lab
        .agentRecords()
        .some((r) => r.msg === 'CNI sandbox gone (netns and host interface): forgotten' && r.containerId === 'c5');
    for (const deadline = Date.now() + 10_000; !forgotten() && Date.now() < deadline;)
      await new Promise((r) => setTimeout(r, 100));
    t.true(forgotten(), 'logged');
    t.false(fs.readFileSync(file, 'utf8').includes('"containerId":"c5"'), 'gone from the sandboxes file');
  },
);
