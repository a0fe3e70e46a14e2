// MultiNetworkPolicy on a VLAN secondary network, end to end on the real attached programs:
// the lab bridges a VLAN NAD's representors (src/lab/plan.ts vlanSwitchOps) and rawframe
// sends hand-built 802.1Q and QinQ frames (IPv4/IPv6, TCP/UDP) from one pod's net1 to
// another's MAC. Pods a and b are on n1, c on n2 (its frames cross both nodes' bridges
// and the fabric's). One agent per node; one lab for the whole file.
import test, { type ExecutionContext } from 'ava';
import path from 'node:path';
import { encodeU32 } from '../../src/wire/bytes';
import { native } from '../../src/datapath/native';
import { probePairs } from '../../src/lab/probe';
import { AgentLab } from './helpers/agent-lab';
import { exchange, rawframeBinary, type FrameSpec, type Receipt } from './helpers/rawframe';

const NETWORK = 'demo/vnet';

const pod = (name: string, node: string, n: number): string => `
apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: demo
  labels: { app: ${name} }
  annotations:
    k8s.v1.cni.cncf.io/network-status: '[{"name":"${NETWORK}","interface":"net1","ips":["10.20.0.${n}","fd00:20::${n}"]}]'
spec: { nodeName: ${node}, containers: [{ name: c, image: x, ports: [{ containerPort: 80 }, { containerPort: 53, protocol: UDP }] }] }
status: { podIPs: [{ ip: 10.244.${node.slice(1)}.${n} }] }
`;

const node = (name: string, ip: string): string =>
  `apiVersion: v1\nkind: Node\nmetadata: { name: ${name} }\nstatus: { addresses: [{ type: InternalIP, address: ${ip} }] }\n`;

const STATE = {
  'cluster.yaml': [
    'apiVersion: v1\nkind: Namespace\nmetadata: { name: demo }\n',
    node('n1', '192.168.50.11'),
    node('n2', '192.168.50.12'),
    `apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: { name: vnet, namespace: demo }
spec: { config: '{"cniVersion":"0.3.1","name":"vnet","type":"sriov","vlan":100,"ipam":{"type":"static"}}' }
`,
    pod('a', 'n1', 2),
    pod('b', 'n1', 3),
    pod('c', 'n2', 4),
  ].join('---\n'),
  'netfence.yaml':
    'apiVersion: netfence.io/v1alpha1\nkind: NetfenceConfig\nmetadata: { name: netfence }\nhostInterfaces: [eth0]\nserviceCIDRs: [10.96.0.0/16]\n',
};

const mnp = (name: string, spec: string): string => `
apiVersion: k8s.cni.cncf.io/v1beta1
kind: MultiNetworkPolicy
metadata:
  name: ${name}
  namespace: demo
  annotations: { k8s.v1.cni.cncf.io/policy-for: ${NETWORK} }
spec: ${spec}
`;
const B_FROM_A_TCP80 = mnp(
  'b-from-a',
  '{ podSelector: { matchLabels: { app: b } }, policyTypes: [Ingress], ingress: [{ from: [{ podSelector: { matchLabels: { app: a } } }], ports: [{ port: 80 }] }] }',
);
const A_TO_B_UDP53 = mnp(
  'a-to-b',
  '{ podSelector: { matchLabels: { app: a } }, policyTypes: [Egress], egress: [{ to: [{ podSelector: { matchLabels: { app: b } } }], ports: [{ port: 53, protocol: UDP }] }] }',
);
const B_ISOLATED = mnp('b-isolated', '{ podSelector: { matchLabels: { app: b } }, policyTypes: [Ingress] }');
const PRIMARY_DENY = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: deny-all, namespace: demo }
spec: { podSelector: {}, policyTypes: [Ingress, Egress] }
`;

/** Frame shapes: 802.1Q and QinQ (802.1ad outer), each over IPv4 and IPv6. */
const SHAPES = [
  { tags: [100], family: 4 },
  { tags: [100], family: 6 },
  { tags: [100, 200], family: 4 },
  { tags: [100, 200], family: 6 },
] as const;

interface Case {
  from: string;
  to: string;
  proto: 'tcp' | 'udp';
  port: number;
  arrives: boolean;
}

let lab: AgentLab;
let bin: string;
const macs = new Map<string, string>();
let sport = 20000;

function secondary(key: string): { netns: string; ifname: string; hostIf: string; node: string; ips: string[] } {
  const p = lab.state.plan!.pods.find((x) => x.key === key)!;
  const s = p.secondary.find((x) => x.network === NETWORK)!;
  return { netns: p.netns, ifname: s.podIf, hostIf: s.hostIf, node: p.node, ips: s.ips };
}

async function linkOf(netns: string, ifname: string): Promise<{ ifindex: number; address: string }> {
  const [l] = JSON.parse(await lab.exec(netns, ['ip', '-j', 'link', 'show', ifname])) as {
    ifindex: number;
    address: string;
  }[];
  return l;
}

function frame(c: Case, shape: (typeof SHAPES)[number]): FrameSpec {
  const [from, to] = [secondary(`demo/${c.from}`), secondary(`demo/${c.to}`)];
  const ip = (ips: string[]): string => ips.find((a) => a.includes(':') === (shape.family === 6))!;
  return {
    from,
    to: { ...to, mac: macs.get(c.to)! },
    tags: [...shape.tags],
    src: ip(from.ips),
    dst: ip(to.ips),
    proto: c.proto,
    sport: sport++, // a fresh flow each time: no conntrack entry lets it through
    dport: c.port,
  };
}

const expectedTags = (tags: readonly number[]): Receipt['vlans'] =>
  tags.map((vid, i) => ({ tpid: i === 0 && tags.length === 2 ? 0x88a8 : 0x8100, vid }));

/** Every case in every shape; asserts arrival (with its tags intact) or drop. */
async function check(t: ExecutionContext, cases: Case[], when: string): Promise<void> {
  const runs = cases.flatMap((c) => SHAPES.map((shape) => ({ c, shape, spec: frame(c, shape) })));
  const got = await exchange(
    bin,
    runs.map((r) => r.spec),
  );
  const wrong: string[] = [];
  runs.forEach(({ c, shape }, i) => {
    const name = `${c.from}->${c.to} ${c.proto}/${c.port} IPv${shape.family} tags ${shape.tags.join('+')}`;
    const r = got[i];
    if (c.arrives && !r) wrong.push(`${name}: dropped, expected to arrive`);
    else if (!c.arrives && r) wrong.push(`${name}: arrived, expected a drop`);
    else if (r) t.deepEqual(r.vlans, expectedTags(shape.tags), `${name}: tags crossed unchanged`);
  });
  t.deepEqual(wrong, [], when);
}

/** Puts the MultiNetworkPolicy in place, waits for the agents, then checks the cases. */
async function withPolicy(t: ExecutionContext, yaml: string, when: string, cases: Case[]): Promise<void> {
  lab.write('mnp.yaml', yaml);
  await lab.ready();
  await check(t, cases, when);
}

test.before(async () => {
  bin = rawframeBinary();
  lab = await AgentLab.up('vlan', STATE);
  for (const p of ['a', 'b', 'c']) {
    const s = secondary(`demo/${p}`);
    macs.set(p, (await linkOf(s.netns, s.ifname)).address);
  }
  await Promise.all([lab.startAgent('n1'), lab.startAgent('n2')]);
});
test.after.always(async () => {
  await lab?.down();
});

test.serial('no policy: tagged frames cross the programmed representors and the bridges with their tags', async (t) => {
  for (const p of ['a', 'b', 'c']) {
    const s = secondary(`demo/${p}`);
    const { ifindex } = await linkOf(lab.node(s.node).netns, s.hostIf);
    const eps = native.mapOpenPinned(path.join(lab.node(s.node).bpffsRoot, 'nf_endpoints'));
    t.not(native.mapLookup(eps.fd, encodeU32(ifindex)), null, `representor of demo/${p} on ${s.node} is an endpoint`);
    native.closeFd(eps.fd);
  }
  await check(
    t,
    [
      { from: 'a', to: 'b', proto: 'tcp', port: 80, arrives: true },
      { from: 'c', to: 'b', proto: 'udp', port: 53, arrives: true },
      { from: 'a', to: 'c', proto: 'udp', port: 53, arrives: true },
    ],
    'open network',
  );
  // The pods' own (untagged) traffic uses the same bridges.
  const pairs = [
    { from: 'demo/a', to: 'demo/b', port: '80/TCP' },
    { from: 'demo/a', to: 'demo/c', port: '53/UDP', family: 6 as const },
  ];
  t.deepEqual(
    (await probePairs(lab.state, pairs, { network: NETWORK })).map((r) => r.verdict),
    ['allow', 'allow'],
  );
});

test.serial('ingress MultiNetworkPolicy on b: only a, only TCP 80', async (t) => {
  await withPolicy(t, B_FROM_A_TCP80, 'ingress policy on b', [
    { from: 'a', to: 'b', proto: 'tcp', port: 80, arrives: true },
    { from: 'a', to: 'b', proto: 'udp', port: 53, arrives: false },
    { from: 'c', to: 'b', proto: 'tcp', port: 80, arrives: false },
    { from: 'a', to: 'c', proto: 'udp', port: 53, arrives: true },
  ]);
  const flows = lab
    .agentRecords('n1')
    .filter((r) => r.msg === 'flow')
    .map((r) => r.flow as Record<string, unknown>);
  const drop = flows.find((f) => (f.IP as { source: string }).source === '10.20.0.4' && 'TCP' in (f.l4 as object));
  const at = { name: secondary('demo/b').hostIf };
  t.like(
    drop,
    {
      verdict: 'DROPPED',
      traffic_direction: 'INGRESS',
      source: { pod_name: 'c' },
      destination: { pod_name: 'b' },
      interface: at,
    },
    'a dropped tagged frame is a flow record',
  );
});

test.serial('egress MultiNetworkPolicy on a: only to b, only UDP 53', async (t) => {
  await withPolicy(t, A_TO_B_UDP53, 'egress policy on a', [
    { from: 'a', to: 'b', proto: 'udp', port: 53, arrives: true },
    { from: 'a', to: 'b', proto: 'tcp', port: 80, arrives: false },
    { from: 'a', to: 'c', proto: 'udp', port: 53, arrives: false },
    { from: 'c', to: 'b', proto: 'tcp', port: 80, arrives: true },
  ]);
});

test.serial('a primary-network NetworkPolicy leaves the VLAN network alone, and the other way round', async (t) => {
  lab.remove('mnp.yaml');
  lab.write('primary.yaml', PRIMARY_DENY);
  await lab.ready();
  t.deepEqual(
    await lab.probe([{ from: 'demo/a', to: 'demo/b', port: '80/TCP' }]),
    ['deny'],
    'the NetworkPolicy is enforced on the primary network',
  );
  await check(
    t,
    [{ from: 'a', to: 'b', proto: 'tcp', port: 80, arrives: true }],
    'primary deny-all: the VLAN network is open',
  );

  lab.remove('primary.yaml');
  await withPolicy(t, B_ISOLATED, 'b isolated on the VLAN network', [
    { from: 'a', to: 'b', proto: 'tcp', port: 80, arrives: false },
  ]);
  t.deepEqual(
    await lab.probe([{ from: 'demo/a', to: 'demo/b', port: '80/TCP' }]),
    ['allow'],
    'the MultiNetworkPolicy leaves the primary network open',
  );
  lab.remove('mnp.yaml');
  await lab.ready();
});
