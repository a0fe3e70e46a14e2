// Past a capacity limit the agent fails closed and tells the truth, on a lab node with real
// pods (p2 denies all ingress, p3 accepts only p1): a pod selected by more rules than a
// table holds keeps its last enforced table (what it denied stays denied throughout); a new
// pod over the limit is isolated and its CNI ADD fails naming why; a peer-CIDR map too
// small for one table fails only the endpoint of that table, every other change applies,
// and a restarted agent on that state is ready with the rest applied; when even the isolation
// table does not fit, a new pod is enforced deny-all (NF_TABLE_DENY). /readyz lists each
// such endpoint under `failed` with its fallback; the error is counted once.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { askAgent } from '../../src/cni/agent-client';
import { NF_MAX_RULES } from '../../src/wire/abi';
import { decodeCidrKey } from '../../src/wire/tables';
import { native } from '../../src/datapath/native';
import type { ProbePair } from '../../src/lab/probe';
import { AgentLab, DEMO_NAMESPACE, NODE_N1, demoPod, labConfig } from './helpers/agent-lab';

const P1 = '10.244.1.2';
const PODS = [
  DEMO_NAMESPACE,
  demoPod('p1', P1),
  demoPod('p2', '10.244.1.3'),
  demoPod('p3', '10.244.1.4'),
  NODE_N1,
].join('---\n');
const P4 = demoPod('p4', '10.244.1.5');

/** A NetworkPolicy of namespace demo isolating the ingress of pods app=<app>, with these
 *  ingress rules (YAML flow mappings). */
function ingressPolicy(name: string, app: string, rules: string[] = []): string {
  const ingress = rules.length ? `, ingress: [${rules.join(', ')}]` : '';
  return `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: ${name}, namespace: demo }
spec: { podSelector: { matchLabels: { app: ${app} } }, policyTypes: [Ingress]${ingress} }
`;
}

const P2_DENY_INGRESS = ingressPolicy('p2-deny-ingress', 'p2');
const p3From = (apps: string[]): string =>
  ingressPolicy('p3-from', 'p3', [
    `{ from: [{ podSelector: { matchExpressions: [{ key: app, operator: In, values: [${apps.join(', ')}] }] } }], ports: [{ port: 80 }] }`,
  ]);

/** A policy for `app` with more ingress rules than a table holds; its first one would let p1 in on port 80. */
function overLimit(app: string): string {
  const rules = [`{ from: [{ ipBlock: { cidr: ${P1}/32 } }], ports: [{ port: 80 }] }`];
  for (let i = 1; i <= NF_MAX_RULES; i++)
    rules.push(`{ from: [{ ipBlock: { cidr: 10.200.${i >> 8}.${i & 255}/32 } }], ports: [{ port: ${1000 + i} }] }`);
  return ingressPolicy(`${app}-many-rules`, app, rules);
}

/** One rule for `app` whose peers are `n` CIDRs (p1's among them, the others in 10.<net>/16):
 *  one table of n trie entries. */
function manyCidrs(n: number, app = 'p2', net = 201): string {
  const peers = [`{ ipBlock: { cidr: ${P1}/32 } }`];
  for (let i = 1; i < n; i++) peers.push(`{ ipBlock: { cidr: 10.${net}.${i >> 8}.${i & 255}/32 } }`);
  return ingressPolicy(`${app}-many-cidrs`, app, [`{ from: [${peers.join(', ')}], ports: [{ port: 80 }] }`]);
}

const TO_P2: ProbePair[] = [
  { from: 'demo/p1', to: 'demo/p2', port: '80/TCP' },
  { from: 'demo/p3', to: 'demo/p2', port: '80/TCP' },
];
const TO_P3: ProbePair[] = [
  { from: 'demo/p1', to: 'demo/p3', port: '80/TCP' },
  { from: 'demo/p2', to: 'demo/p3', port: '80/TCP' },
];

interface Failure {
  ifname: string;
  pod?: string;
  error: string;
  fallback?: Record<string, string>;
}
interface Ready {
  ready: boolean;
  generation: number;
  endpoints: number;
  failed: Failure[];
  errors: string[];
}

let lab: AgentLab;

test.before(async () => {
  lab = await AgentLab.up('failclosed', {
    'pods.yaml': PODS,
    'p4.yaml': P4,
    'netfence.yaml': labConfig(),
    'p2-deny.yaml': P2_DENY_INGRESS,
    'p3-from.yaml': p3From(['p1']),
  });
  lab.remove('p4.yaml');
});
test.after.always(async () => {
  await lab?.down();
});

const readyz = async (): Promise<Ready> => JSON.parse(await lab.http('/readyz')) as Ready;
const endpointErrors = async (): Promise<number> =>
  Number(/^netfence_errors_total\{stage="endpoint"\} (\d+)/m.exec(await lab.http('/metrics'))?.[1] ?? 0);

/** Probes `pairs` over and over while `change` runs (and twice after it); every verdict seen. */
async function throughout(pairs: ProbePair[], change: () => Promise<unknown>): Promise<string[]> {
  let done = false;
  const seen: string[] = [];
  const watch = (async () => {
    while (!done) seen.push(...(await lab.probe(pairs, 300)));
  })();
  try {
    await change();
    for (let i = 0; i < 2; i++) seen.push(...(await lab.probe(pairs, 300)));
  } finally {
    done = true;
    await watch;
  }
  return seen;
}

test.serial(
  'an enforced pod selected by more rules than a table holds keeps its last table: what it denied stays denied throughout',
  async (t) => {
    await lab.startAgent();
    t.deepEqual(
      await lab.probe([...TO_P2, ...TO_P3]),
      ['deny', 'deny', 'allow', 'deny'],
      'p2 denies all ingress, p3 accepts only p1',
    );
    const errorsBefore = await endpointErrors();

    const seen = await throughout(TO_P2, () => {
      lab.write('p2-many.yaml', overLimit('p2'));
      return lab.ready();
    });
    t.true(seen.length >= 4);
    t.deepEqual([...new Set(seen)], ['deny'], 'p1->p2 and p3->p2 denied before, during and after');
    const status = await readyz();
    t.true(status.ready, 'the node is ready: every other endpoint is enforced as desired');
    t.is(status.failed.length, 1, JSON.stringify(status.failed));
    t.like(status.failed[0], { ifname: lab.hostIf('demo/p2'), pod: 'demo/p2', fallback: { ingress: 'kept' } });
    t.regex(
      status.failed[0].error,
      new RegExp(`ingress table needs ${NF_MAX_RULES + 3} rules, limit ${NF_MAX_RULES}; keeps its last enforced table`),
    );
    t.true(status.errors.includes(status.failed[0].error));
    t.is(await endpointErrors(), errorsBefore + 1, 'counted');
    const logged = lab.agentRecords().filter((r) => r.level === 50 && r.msg === status.failed[0].error);
    t.is(logged.length, 1, 'logged once at error level');

    // Other changes still apply; the same error is not counted again.
    lab.write('p3-from.yaml', p3From(['p1', 'p2']));
    await lab.ready();
    t.deepEqual(await lab.probe([...TO_P2, ...TO_P3]), ['deny', 'deny', 'allow', 'allow']);
    t.is(await endpointErrors(), errorsBefore + 1, 'an error that lasts is counted once');
    t.is((await readyz()).failed.length, 1);

    // Back under the limit: p2 gets its desired table and leaves `failed`.
    lab.remove('p2-many.yaml');
    lab.write('p3-from.yaml', p3From(['p1']));
    await lab.ready();
    t.deepEqual((await readyz()).failed, []);
    t.deepEqual(await lab.probe([...TO_P2, ...TO_P3]), ['deny', 'deny', 'allow', 'deny']);
  },
);

test.serial('a new pod over the limit is isolated in that direction, and its CNI ADD fails naming why', async (t) => {
  lab.write('p4-many.yaml', overLimit('p4'));
  lab.write('p4.yaml', P4);
  await lab.ready();
  t.deepEqual(
    await lab.probe([
      { from: 'demo/p1', to: 'demo/p4', port: '80/TCP' },
      { from: 'demo/p4', to: 'demo/p1', port: '80/TCP' },
    ]),
    ['deny', 'allow'],
    'ingress isolated although its policy would let p1 in; egress (no policy) untouched',
  );
  const status = await readyz();
  t.true(status.ready);
  t.like(
    status.failed.find((f) => f.pod === 'demo/p4'),
    { ifname: lab.hostIf('demo/p4'), fallback: { ingress: 'isolated' } },
  );
  const socket = lab.cniSocket();
  for (const deadline = Date.now() + 10_000; !fs.existsSync(socket) && Date.now() < deadline;)
    await new Promise((r) => setTimeout(r, 50));
  const req = {
    containerId: 'p4-1',
    netns: `/run/netns/${lab.podNetns('demo/p4')}`,
    ifName: 'eth0',
    podNamespace: 'demo',
    podName: 'p4',
  };
  const answer = await askAgent(socket, { op: 'add', ...req }, 10_000);
  t.false(answer.ok);
  t.regex(
    (answer as { error: string }).error,
    /program pod demo\/p4: ingress isolated, not enforced as its policies say: .*ingress table needs \d+ rules/,
  );

  lab.remove('p4-many.yaml');
  await lab.ready();
  t.deepEqual((await readyz()).failed, []);
});

test.serial(
  'a peer-CIDR map too small for one table fails only that endpoint; other changes apply; a restarted agent is ready with the rest',
  async (t) => {
    await lab.kill('SIGTERM');
    const { bpffsRoot } = lab.node();
    fs.rmSync(bpffsRoot, { recursive: true, force: true });
    lab.write('netfence.yaml', labConfig('capacity: { peerCidrs: 32 }\n'));
    lab.write('p2-many-cidrs.yaml', manyCidrs(64));

    const started = await lab.startAgent();
    const expectState = async (when: string): Promise<Ready> => {
      const status = await readyz();
      t.true(status.ready, when);
      t.is(status.failed.length, 1, `${when}: ${JSON.stringify(status.failed)}`);
      t.like(status.failed[0], { pod: 'demo/p2', fallback: { ingress: 'isolated' } }, when);
      t.regex(
        status.failed[0].error,
        /ingress: write table 0x[0-9a-f]+: update nf_peer_cidr: map full \((ENOSPC|E2BIG)\).*; isolated/,
        when,
      );
      return status;
    };
    const first = await expectState('first start');
    t.true(first.endpoints >= 3, 'p1, p3, p4 and the uplink are enforced');
    t.deepEqual(
      await lab.probe([...TO_P2, ...TO_P3]),
      ['deny', 'deny', 'allow', 'deny'],
      'p2 isolated (its policy would let p1 in); p3 enforced',
    );

    lab.write('p3-from.yaml', p3From(['p1', 'p2']));
    await lab.ready();
    t.deepEqual(await lab.probe([...TO_P2, ...TO_P3]), ['deny', 'deny', 'allow', 'allow'], 'a later change applies');

    await lab.kill('SIGKILL');
    const again = await lab.startAgent();
    t.true(again.ready.generation >= 1);
    await expectState('after a restart');
    t.deepEqual(
      await lab.probe([...TO_P2, ...TO_P3]),
      ['deny', 'deny', 'allow', 'allow'],
      'the rest applied after the restart',
    );
    t.log(`first start ${started.ms} ms, restart ${again.ms} ms`);
  },
);

test.serial(
  'when even the isolation table does not fit, a new pod denies everything in that direction, never open',
  async (t) => {
    // p2 and p3 each get a table of 32 CIDRs (p1's among them). Measured with room to spare:
    // the map's entries, and the larger of the two tables'.
    lab.write('p2-many-cidrs.yaml', manyCidrs(32));
    lab.write('p3-from.yaml', manyCidrs(32, 'p3', 202));
    const restart = async (capacity: string): Promise<void> => {
      await lab.kill('SIGTERM');
      fs.rmSync(lab.node().bpffsRoot, { recursive: true, force: true });
      lab.write('netfence.yaml', labConfig(capacity));
      await lab.startAgent();
    };
    await restart('');
    t.deepEqual((await readyz()).failed, []);
    const cidrs = native.mapOpenPinned(path.join(lab.node().bpffsRoot, 'nf_peer_cidr'));
    const perTable = new Map<number, number>();
    for (const { table } of native.mapKeys(cidrs.fd).map(decodeCidrKey))
      perTable.set(table, (perTable.get(table) ?? 0) + 1);
    native.closeFd(cidrs.fd);
    const total = [...perTable.values()].reduce((a, b) => a + b, 0);
    const table = Math.max(...perTable.values());
    // Room for everything but one of the pod tables: the first pod programmed fills the map
    // to the brim; the other's own table and its isolation table (one CIDR) find no room.
    await restart(`capacity: { peerCidrs: ${total - table} }\n`);
    const status = await readyz();
    t.true(status.ready);
    t.is(status.failed.length, 1, JSON.stringify(status.failed));
    const closed = status.failed[0];
    t.like(closed, { fallback: { ingress: 'isolated' } });
    t.regex(
      closed.error,
      /ingress: write table 0x[0-9a-f]+: update nf_peer_cidr: map full .*; its isolation table did not fit either \(write table 0x[0-9a-f]+: update nf_peer_cidr: map full .*\): denies everything, privileged rules included$/,
    );
    const open = closed.pod === 'demo/p2' ? 'demo/p3' : 'demo/p2';
    t.is([open, closed.pod].sort().join(), 'demo/p2,demo/p3', JSON.stringify(closed));
    t.deepEqual(
      await lab.probe([
        { from: 'demo/p1', to: closed.pod!, port: '80/TCP' },
        { from: open, to: closed.pod!, port: '80/TCP' },
        { from: 'demo/p1', to: open, port: '80/TCP' },
        { from: closed.pod!, to: 'demo/p1', port: '80/TCP' },
      ]),
      ['deny', 'deny', 'allow', 'allow'],
      `${closed.pod} denies all ingress although its policy would let p1 in; ${open} enforced as its policy says; egress untouched`,
    );
  },
);
