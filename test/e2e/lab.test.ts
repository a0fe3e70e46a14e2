// The lab itself: up builds working namespaces, probes see real allow and deny, down
// leaves nothing behind, also after a crash halfway through up.
import test from 'ava';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { namesFilePath } from '../../src/agent/names-file';
import { run } from '../../src/lab/exec';
import { labDown, labNameFor, labUp } from '../../src/lab/lifecycle';
import { fabricCounters, probePairs } from '../../src/lab/probe';
import { BPFFS_LAB_ROOT, labWorkDir, listNetns, loadState, stateFile } from '../../src/lab/state';
import { labSnapshot } from './lab-fixture';

const PREFIX = 'nflt-';

function leftovers(name: string): string[] {
  const left = listNetns().filter((n) => n.startsWith(`${name}-`));
  for (const p of [stateFile(name), labWorkDir(name), join(BPFFS_LAB_ROOT, name)]) if (existsSync(p)) left.push(p);
  return left;
}

test.serial('up, probe allow and deny, down leaves nothing', async (t) => {
  const stateDir = `/tmp/nf-labtest-up-${process.pid}`;
  const name = labNameFor(stateDir, PREFIX);
  try {
    const state = await labUp(labSnapshot(), { stateDir, prefix: PREFIX, agents: false });
    t.true(loadState(name)?.complete);
    t.is(state.netns.length, 1 + 2 + 3); // fabric, 2 nodes, 3 pods (y/h is hostNetwork)
    const pairs = [
      { from: 'x/a', to: 'x/b', port: '80/TCP' }, // same node
      { from: 'x/a', to: 'y/c', port: '81/UDP', family: 6 as const }, // cross node, v6
      { from: 'y/c', to: 'y/h', port: '80/TCP' }, // to a hostNetwork pod
      { from: 'y/c', to: 'svc:x/web', port: '8080/TCP' }, // ClusterIP DNAT on n2 to x/b on n1
      { from: 'node/n1', to: 'api', port: '6443/TCP' },
      { from: 'x/a', to: 'y/c', port: '80/SCTP' },
    ];
    const before = await fabricCounters(state);
    const r = await probePairs(state, pairs);
    t.deepEqual(
      r.map((x) => x.verdict),
      ['allow', 'allow', 'allow', 'allow', 'allow', 'skip'],
    );
    t.is(r[0].reply, 'netfence x/b');
    t.is(r[2].reply, 'netfence node/n2');
    t.is(r[3].reply, 'netfence x/b');
    t.is(r[4].reply, 'netfence fabric');
    const after = await fabricCounters(state);
    t.true((after.get('cross:n1>n2') ?? 0) > (before.get('cross:n1>n2') ?? 0), 'cross-node traffic passes the fabric');
    t.is(after.get('hairpin:n1'), before.get('hairpin:n1'), 'same-node traffic stays on the node without a tunnel');

    // A silent drop in x/b must read as deny (timeout), a closed port as error.
    const xb = state.plan!.pods.find((p) => p.key === 'x/b')!.netns;
    await run(['ip', 'netns', 'exec', xb, 'iptables', '-w', '-A', 'INPUT', '-p', 'tcp', '--dport', '80', '-j', 'DROP']);
    const denied = await probePairs(
      state,
      [
        { from: 'y/c', to: 'x/b', port: '80/TCP' },
        { from: 'y/c', to: 'x/b', port: '81/UDP' },
        { from: 'y/c', to: 'x/b', port: '99/TCP' },
      ],
      { timeoutMs: 500 },
    );
    t.deepEqual(
      denied.map((x) => x.verdict),
      ['deny', 'allow', 'error'],
    );
    t.is(denied[2].detail, 'ECONNREFUSED');
  } finally {
    await labDown(name);
  }
  t.deepEqual(leftovers(name), []);
  await labDown(name); // idempotent
});

test.serial('down after a crash halfway through up', async (t) => {
  const stateDir = `/tmp/nf-labtest-crash-${process.pid}`;
  const name = labNameFor(stateDir, PREFIX);
  await t.throwsAsync(labUp(labSnapshot(), { stateDir, prefix: PREFIX, agents: false, crashAfterOps: 60 }), {
    message: /simulated crash after 60 ops/,
  });
  const state = loadState(name);
  t.false(state?.complete);
  t.true((state?.netns.length ?? 0) >= 2);
  t.true(listNetns().filter((n) => n.startsWith(`${name}-`)).length >= 2);
  mkdirSync(join(BPFFS_LAB_ROOT, name, 'n1'), { recursive: true }); // as an agent's pins would
  const runDir = dirname(namesFilePath(join(BPFFS_LAB_ROOT, name, 'n1')));
  mkdirSync(runDir, { recursive: true }); // and its names / last-good files
  // A namespace the state file does not know (crash between create and record) is swept too.
  await run(['ip', 'netns', 'add', `${name}-stray`]);
  await labDown(name);
  t.deepEqual(leftovers(name), []);
  t.false(existsSync(runDir), "the agents' run directories are removed");
});
