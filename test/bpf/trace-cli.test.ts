// `netfence compile` and `netfence trace` end to end (the built CLI, both engines).
import test from 'ava';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { root } from './objects';

const CLI = path.join(root, 'dist/src/cli/main.js');
const STATE = path.join(root, 'test/fixtures/netpol-truth/named-port-egress/state');

function run(...args: string[]): string {
  return execFileSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
}

test('trace --matrix: bpf and model print the same pairs', (t) => {
  for (const port of ['80/TCP', '81/TCP']) {
    const model = JSON.parse(run('trace', '--state', STATE, '--matrix', '--port', port, '--engine', 'model', '--json'));
    const bpf = JSON.parse(run('trace', '--state', STATE, '--matrix', '--port', port, '--engine', 'bpf', '--json'));
    t.is(model.pairs.length, 72);
    t.deepEqual(bpf, model, port);
  }
  const m = JSON.parse(run('trace', '--state', STATE, '--matrix', '--port', '81/TCP', '--engine', 'bpf', '--json'));
  t.deepEqual(m.pairs.find((p: { from: string; to: string }) => p.from === 'x/a' && p.to === 'y/b'), { from: 'x/a', to: 'y/b', verdict: 'deny' });
});

test('trace: one packet, JSON names the deciding rule per direction', (t) => {
  const bpf = JSON.parse(run('trace', '--state', STATE, '--from', 'x/a', '--to', 'y/b', '--port', '81/TCP', '--engine', 'bpf', '--json'));
  t.deepEqual(bpf, {
    verdict: 'deny',
    engine: 'bpf',
    egress: { verdict: 'deny', tier: 'netpol', policy: null, rule: 'isolation' },
    ingress: { verdict: 'allow', tier: 'default', policy: null, rule: null },
  });
  const model = JSON.parse(run('trace', '--state', STATE, '--from', 'x/a', '--to', 'y/b', '--port', '80/TCP', '--engine', 'model', '--json'));
  t.deepEqual(model.egress, { verdict: 'allow', tier: 'netpol', policy: 'NetworkPolicy x/allow-egress', rule: 'egress[0]' });
  const bpf80 = JSON.parse(run('trace', '--state', STATE, '--from', 'x/a', '--to', 'y/b', '--port', '80/TCP', '--engine', 'bpf', '--json'));
  t.deepEqual(bpf80.egress, model.egress);
  t.is(bpf80.verdict, 'allow');
});

test('compile --json: endpoints of the node, shared tables, no errors', (t) => {
  const out = JSON.parse(run('compile', '--state', STATE, '--json'));
  t.is(out.node, 'node-1');
  t.deepEqual(out.errors, []);
  t.is(out.endpoints.length, 10, '9 pods and the node');
  const xa = out.endpoints.find((e: { pod?: string }) => e.pod === 'x/a');
  const xb = out.endpoints.find((e: { pod?: string }) => e.pod === 'x/b');
  t.is(xa.egressTable, xb.egressTable);
  t.true(out.maps.nf_rules > 0);
});

test('trace: bad input is an error naming the flag', (t) => {
  const err = t.throws(() => execFileSync(process.execPath, [CLI, 'trace', '--state', STATE, '--from', 'x/a', '--to', 'y/b', '--port', '80/FOO'], { encoding: 'utf8', stdio: 'pipe' }));
  t.regex(String((err as { stderr?: string }).stderr), /parse --port "80\/FOO"/);
});
