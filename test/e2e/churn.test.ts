// Pod churn against a lab node's agent (src/lab/churn): 20 pods/s added for 5 s, each
// deleted 3 s later, veths and namespaces made and removed as a routed CNI and the runtime
// do. Every pod must have been enforced (its entry with the isolating policy's table and
// its hooks recorded) and then removed (entry and pins gone); afterwards no entry or
// pin of a gone interface is left, and the agent is alive and never failed a pass.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { native } from '../../src/datapath/native';
import { leftovers, runChurn } from '../../src/lab/churn';
import { run } from '../../src/lab/exec';
import { churnSlots, slotsYaml } from '../../bench/churn';
import { AgentLab, DEMO_NAMESPACE, NODE_N1, isolate, labConfig } from './helpers/agent-lab';

let lab: AgentLab;

test.before(async () => {
  lab = await AgentLab.up('churn', {
    'cluster.yaml': [DEMO_NAMESPACE, NODE_N1].join('---\n'),
    'netfence.yaml': labConfig(),
    'isolate.yaml': isolate('churn'),
  });
});
test.after.always(async () => {
  await lab?.down();
});

test('20 pods/s for 5 s: every pod enforced, then removed; nothing left behind', async (t) => {
  const slots = churnSlots(200).map((s) => ({ ...s, pod: s.pod.replace('churn/', 'demo/') }));
  lab.write('pods.yaml', slotsYaml(slots, 'n1'));
  const { pid } = await lab.startAgent();
  const { netns, bpffsRoot } = lab.node();
  const r = await runChurn({
    addon: native,
    nodeNetns: netns,
    bpffsRoot,
    slots,
    rate: 20,
    seconds: 5,
    lifetimeMs: 3000,
    netnsPrefix: `${lab.state.name}-c`,
    ifPrefix: 'nfc',
    wanted: (ep) => ep.ingressTable !== 0,
  });
  t.deepEqual(r.ipErrors, [], 'every veth, route and namespace made and removed as planned');
  t.is(r.pods.length, 100);
  t.deepEqual(
    r.notEnforced.map((p) => p.ifname),
    [],
    'pods never seen enforced',
  );
  t.deepEqual(
    r.notRemoved.map((p) => p.ifname),
    [],
    'pods whose entry or pins stayed',
  );
  const links = JSON.parse((await run(['ip', '-n', netns, '-j', 'link', 'show'])).stdout) as {
    ifname: string;
    ifindex: number;
  }[];
  t.deepEqual(
    leftovers(
      native,
      bpffsRoot,
      links.map((l) => ({ name: l.ifname, ifindex: l.ifindex })),
    ),
    { entries: [], pins: [] },
  );
  t.true(
    links.some((l) => l.ifname === 'eth0') && fs.existsSync(path.join(bpffsRoot, 'links', 'eth0-ingress')),
    'the host interface stays enforced',
  );
  process.kill(pid, 0); // alive
  const failedPasses = lab.agentRecords().filter((rec) => rec.stage === 'pass');
  t.deepEqual(failedPasses, [], 'no pass failed');
  t.log(`interface -> enforced: max ${Math.max(...r.enforceMs).toFixed(0)} ms over ${r.enforceMs.length} pods`);
});
