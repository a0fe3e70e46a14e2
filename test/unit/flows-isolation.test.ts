// A drop by the isolation rule (which belongs to no policy) names, in the flow record's
// policy, the NetworkPolicies that isolate the endpoint in that direction: from the
// agent's context, also when built from the isolation names the names file carries.
import test from 'ava';
import type { CompileResult } from '../../src/compile/output';
import { IPPROTO, NF_REASON_DESC, NF_TABLE_DENY, NfDir, NfEpFlag, NfReason } from '../../src/wire/abi';
import type { DropEvent } from '../../src/wire/events';
import { OVER_CAPACITY, flowContext, isolationNames, toFlow } from '../../src/agent/flows';
import { namesFromCompile } from '../../src/agent/names-file';
import { snapshotFromYaml } from '../../src/sources/directory';

const pod = (name: string, ip: string) => `
apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: demo, labels: { app: ${name}, tier: web } }
spec: { nodeName: n1, containers: [{ name: c, image: x }] }
status: { podIPs: [{ ip: ${ip} }] }
`;
const netpol = (name: string, selector: string, types: string) => `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: ${name}, namespace: demo }
spec: { podSelector: { matchLabels: { ${selector} } }, policyTypes: [${types}] }
`;
const SNAPSHOT = snapshotFromYaml(
  [
    'apiVersion: v1\nkind: Namespace\nmetadata: { name: demo }\n',
    pod('a', '10.244.1.2'),
    pod('b', '10.244.1.3'),
    netpol('isolate-b', 'app: b', 'Ingress'),
    netpol('web', 'tier: web', 'Ingress'),
    netpol('b-egress', 'app: b', 'Egress'),
  ].join('---\n'),
);

const POD_ENTRY = {
  ingressChunks: 1,
  egressChunks: 0,
  flags: NfEpFlag.POD,
  revision: 1,
  statsSlot: 0,
  hooks: ['ingress', 'egress'] as const,
  tunnel: false,
};
// Tables: 1 = [isolation] (b's ingress), 2 = [isolation] (b's egress), 3 = [something, isolation] (a's ingress).
const COMPILED: Pick<CompileResult, 'policies' | 'rules' | 'endpoints'> = {
  policies: ['NetworkPolicy demo/b-egress', 'NetworkPolicy demo/isolate-b', 'NetworkPolicy demo/web'],
  rules: [
    { table: 1, index: 0, policyId: 0xffffffff, policy: '', rule: 'isolation', action: 'deny', tier: 'netpol' },
    { table: 2, index: 0, policyId: 0xffffffff, policy: '', rule: 'isolation', action: 'deny', tier: 'netpol' },
    {
      table: 3,
      index: 0,
      policyId: 2,
      policy: 'NetworkPolicy demo/web',
      rule: 'ingress[0]',
      action: 'allow',
      tier: 'netpol',
    },
    { table: 3, index: 1, policyId: 0xffffffff, policy: '', rule: 'isolation', action: 'deny', tier: 'netpol' },
  ],
  endpoints: [
    {
      ifname: 'vb',
      ifindex: 11,
      id: 7,
      kind: 'pod',
      pod: 'demo/b',
      ingressTable: 1,
      egressTable: 2,
      ...POD_ENTRY,
      egressChunks: 1,
    },
    { ifname: 'va', ifindex: 10, id: 8, kind: 'pod', pod: 'demo/a', ingressTable: 3, egressTable: 0, ...POD_ENTRY },
  ],
};

const drop = (epId: number, table: number, ruleIndex: number, dir: number): DropEvent => ({
  tsNs: 1n,
  epId,
  ifindex: 11,
  table,
  policyId: 0xffffffff,
  ruleId: 0,
  ruleIndex,
  dir,
  proto: IPPROTO.TCP,
  reason: 1,
  action: 2,
  sport: 40000,
  dport: 80,
  saddr: '10.244.1.2',
  daddr: '10.244.1.3',
});

test('isolation drops name the isolating policies of that endpoint and direction', (t) => {
  t.deepEqual(isolationNames(SNAPSHOT, COMPILED), {
    7: {
      ingress: 'isolation (NetworkPolicy demo/isolate-b, demo/web)',
      egress: 'isolation (NetworkPolicy demo/b-egress)',
    },
    8: { ingress: 'isolation (NetworkPolicy demo/web)' },
  });
  const ctx = flowContext(SNAPSHOT, COMPILED);
  t.like(toFlow(drop(7, 1, 0, NfDir.INGRESS), ctx), {
    policy: 'isolation (NetworkPolicy demo/isolate-b, demo/web)',
    rule: 'isolation',
  });
  t.like(toFlow(drop(7, 2, 0, NfDir.EGRESS), ctx), {
    policy: 'isolation (NetworkPolicy demo/b-egress)',
    traffic_direction: 'EGRESS',
  });
  t.like(toFlow(drop(8, 3, 1, NfDir.INGRESS), ctx), { policy: 'isolation (NetworkPolicy demo/web)' });
  // A drop by a policy's own rule keeps that policy's name.
  t.like(toFlow(drop(8, 3, 0, NfDir.INGRESS), ctx), { policy: 'NetworkPolicy demo/web', rule: 'ingress[0]' });
});

test("the agent's context built with the names file's isolation names blames the same policies", (t) => {
  const names = namesFromCompile({ ...COMPILED, identities: new Map() }, SNAPSHOT, {
    bpffsRoot: '/sys/fs/bpf/x',
    node: 'n1',
    generation: 1,
  });
  const ctx = flowContext(SNAPSHOT, COMPILED, names.isolation);
  t.is(toFlow(drop(7, 1, 0, NfDir.INGRESS), ctx).policy, 'isolation (NetworkPolicy demo/isolate-b, demo/web)');
  t.is(toFlow(drop(8, 3, 1, NfDir.INGRESS), ctx).policy, 'isolation (NetworkPolicy demo/web)');
});

test('a drop on NF_TABLE_DENY (the tables did not fit) blames no policy: "(isolated: over capacity)"', (t) => {
  const ctx = flowContext(SNAPSHOT, COMPILED);
  // as the program sends it: no rule (index 0xffff), policy id 0, which names a real policy
  const ev = { ...drop(7, NF_TABLE_DENY, 0xffff, NfDir.INGRESS), policyId: 0, reason: NfReason.ISOLATED };
  const flow = toFlow(ev, ctx);
  t.is(flow.policy, OVER_CAPACITY);
  t.is(OVER_CAPACITY, '(isolated: over capacity)');
  t.is(flow.rule, undefined);
  t.is(flow.drop_reason_desc, NF_REASON_DESC[NfReason.ISOLATED].toUpperCase());
  t.like(flow, { traffic_direction: 'INGRESS', destination: { namespace: 'demo', pod_name: 'b' } });
});
