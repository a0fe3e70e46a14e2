// Map capacities on a running node: a NetfenceConfig `capacity` change takes effect at the
// agent's next start by migrating the pinned maps (staging maps filled, hooks switched, then
// the pins replaced). Denied pairs stay denied throughout, and an established connection
// whose replies pass only through conntrack survives: its entry is carried to the new map.
import test from 'ava';
import path from 'node:path';
import { native } from '../../src/datapath/native';
import { HeldConnection } from './hold';
import { ALLOW_A_TO_B, AgentLab, demoPodsAbc, isolate, labConfig } from './helpers/agent-lab';

// a accepts nothing: b's replies to a's connection pass only as conntrack replies.
const POLICIES = [isolate('a'), ALLOW_A_TO_B].join('---\n');

const DENIED = [
  { from: 'demo/c', to: 'demo/b', port: '80/TCP' },
  { from: 'demo/b', to: 'demo/a', port: '80/TCP' },
];

let lab: AgentLab;

test.before(async () => {
  lab = await AgentLab.up('capacity', {
    'pods.yaml': demoPodsAbc(),
    'policies.yaml': POLICIES,
    'netfence.yaml': labConfig(),
  });
});
test.after.always(async () => {
  await lab?.down();
});

function maxEntries(name: string): number {
  const m = native.mapOpenPinned(path.join(lab.node().bpffsRoot, name));
  native.closeFd(m.fd);
  return m.maxEntries;
}

test.serial(
  'a changed capacity migrates the pinned maps at the next start: nothing opens, an established flow survives',
  async (t) => {
    await lab.startAgent();
    t.is(maxEntries('nf_peer_cidr'), 262144, 'the default');
    const held = await HeldConnection.open(lab.podNetns('demo/a'), lab.podIp('demo/b'), 80);
    t.teardown(() => held.close());
    t.deepEqual(await lab.probe([{ from: 'demo/a', to: 'demo/b', port: '80/TCP' }, ...DENIED]), [
      'allow',
      'deny',
      'deny',
    ]);
    t.is(await held.check(), 'allow');

    await lab.kill('SIGTERM');
    lab.write('netfence.yaml', labConfig('capacity: { peerCidrs: 300000, conntrack: 65536 }\n'));
    // Probe the denied pairs over and over while the new agent migrates.
    let migrating = true;
    const during: string[][] = [];
    const prober = (async () => {
      while (migrating) during.push(await lab.probe(DENIED, 300));
    })();
    const restart = await lab.startAgent().finally(() => (migrating = false));
    await prober;
    t.log(`restart with a new capacity to ready: ${restart.ms} ms, ${during.length} probe rounds meanwhile`);
    t.true(during.length > 0);
    t.deepEqual(
      during.filter((r) => r.some((v) => v !== 'deny')),
      [],
      'no denied pair opened during the migration',
    );

    const records = lab.agentRecords();
    t.regex(String(records.find((r) => r.msg === 'migrating pinned datapath state')?.reason), /max_entries/);
    const finished = records.find((r) => r.msg === 'migration finished: hooks switched, old pins replaced');
    t.truthy(finished);
    t.true(((finished?.carried as Record<string, number>).nf_ct ?? 0) >= 1, JSON.stringify(finished?.carried));
    t.is(maxEntries('nf_peer_cidr'), 300000);
    t.is(maxEntries('nf_ct'), 65536);
    t.is(await held.check(), 'allow', 'the held connection survived: its conntrack entry was carried');
    t.deepEqual(await lab.probe([{ from: 'demo/a', to: 'demo/b', port: '80/TCP' }, ...DENIED]), [
      'allow',
      'deny',
      'deny',
    ]);

    await lab.kill('SIGTERM');
    await lab.startAgent();
    t.true(
      lab.agentRecords().some((r) => r.msg === 'datapath adopted from pins'),
      'the same capacity adopts the migrated pins',
    );
  },
);
