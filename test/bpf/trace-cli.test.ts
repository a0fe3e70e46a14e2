// `netfence compile` and `netfence trace` end to end (the built CLI, both engines).
import test from 'ava';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { manyPoliciesYaml } from '../helpers/many-policies';
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
  t.deepEqual(
    m.pairs.find((p: { from: string; to: string }) => p.from === 'x/a' && p.to === 'y/b'),
    { from: 'x/a', to: 'y/b', verdict: 'deny' },
  );
});

test('trace: one packet, JSON names the deciding rule per direction', (t) => {
  const bpf = JSON.parse(
    run('trace', '--state', STATE, '--from', 'x/a', '--to', 'y/b', '--port', '81/TCP', '--engine', 'bpf', '--json'),
  );
  t.deepEqual(bpf, {
    verdict: 'deny',
    engine: 'bpf',
    egress: { verdict: 'deny', tier: 'netpol', policy: null, rule: 'isolation' },
    ingress: { verdict: 'allow', tier: 'default', policy: null, rule: null },
  });
  const model = JSON.parse(
    run('trace', '--state', STATE, '--from', 'x/a', '--to', 'y/b', '--port', '80/TCP', '--engine', 'model', '--json'),
  );
  t.deepEqual(model.egress, {
    verdict: 'allow',
    tier: 'netpol',
    policy: 'NetworkPolicy x/allow-egress',
    rule: 'egress[0]',
  });
  const bpf80 = JSON.parse(
    run('trace', '--state', STATE, '--from', 'x/a', '--to', 'y/b', '--port', '80/TCP', '--engine', 'bpf', '--json'),
  );
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
  const err = t.throws(() =>
    execFileSync(
      process.execPath,
      [CLI, 'trace', '--state', STATE, '--from', 'x/a', '--to', 'y/b', '--port', '80/FOO'],
      { encoding: 'utf8', stdio: 'pipe' },
    ),
  );
  t.regex(String((err as { stderr?: string }).stderr), /parse --port "80\/FOO"/);
});

/** Issue 14's node: p2 denies all ingress, p3 accepts only p1, and 300 NetworkPolicies
 *  select p2, one ipBlock and one port each: p2's ingress table has 302 rules, 2 chunks. */
function manyPoliciesState(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `nf-chunks-${process.pid}-`));
  const pod = (name: string, ip: string) =>
    `apiVersion: v1\nkind: Pod\nmetadata: { name: ${name}, namespace: app, labels: { pod: ${name} } }\nspec: { nodeName: n1 }\nstatus: { podIPs: [{ ip: ${ip} }] }\n`;
  const topology = [
    'apiVersion: v1\nkind: Node\nmetadata: { name: n1 }\nstatus: { addresses: [{ type: InternalIP, address: 10.0.0.1 }] }\n',
    'apiVersion: v1\nkind: Namespace\nmetadata: { name: app }\n',
    pod('p1', '10.244.0.1'),
    pod('p2', '10.244.0.2'),
    pod('p3', '10.244.0.3'),
    'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: p2-deny, namespace: app }\nspec: { podSelector: { matchLabels: { pod: p2 } }, policyTypes: [Ingress] }\n',
    'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: p3-from-p1, namespace: app }\n' +
      'spec: { podSelector: { matchLabels: { pod: p3 } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: p1 } } }] }] }\n',
  ];
  fs.writeFileSync(path.join(dir, 'topology.yaml'), topology.join('---\n'));
  fs.writeFileSync(path.join(dir, 'many.yaml'), manyPoliciesYaml(300, 'app', 'np', { pod: 'p2' }));
  return dir;
}

test("300 NetworkPolicies selecting one pod: it stays enforced, trace --engine bpf gives the model's verdicts", (t) => {
  const state = manyPoliciesState();
  try {
    const compiled = JSON.parse(run('compile', '--state', state, '--json'));
    t.deepEqual(compiled.errors, []);
    t.truthy(
      compiled.endpoints.find(
        (e: { pod?: string; ingressTable: number }) => e.pod === 'app/p2' && e.ingressTable !== 0,
      ),
      'p2 has its ingress table',
    );
    for (const port of ['1000/TCP', '1299/TCP', '80/TCP']) {
      const model = JSON.parse(
        run('trace', '--state', state, '--matrix', '--port', port, '--engine', 'model', '--json'),
      );
      const bpf = JSON.parse(run('trace', '--state', state, '--matrix', '--port', port, '--engine', 'bpf', '--json'));
      t.deepEqual(bpf, model, port);
      const verdict = (from: string, to: string) =>
        bpf.pairs.find((p: { from: string; to: string }) => p.from === from && p.to === to)?.verdict;
      t.is(verdict('app/p1', 'app/p2'), 'deny', `${port}: p1 -> p2 denied`);
      t.is(verdict('app/p3', 'app/p2'), 'deny', `${port}: p3 -> p2 denied`);
      t.is(verdict('app/p2', 'app/p3'), 'deny', `${port}: p2 -> p3 denied`);
      t.is(verdict('app/p1', 'app/p3'), 'allow', `${port}: p1 -> p3 allowed`);
    }
    // from an ipBlock of a policy of the second chunk, to its port and to another
    for (const [from, port, policy] of [
      ['10.101.43.7', '1299/TCP', 'NetworkPolicy app/np299'],
      ['10.100.5.7', '1005/TCP', 'NetworkPolicy app/np5'],
      ['10.101.43.7', '1005/TCP', null],
    ] as const) {
      const args = ['trace', '--state', state, '--from', from, '--to', 'app/p2', '--port', port, '--json'];
      const bpf = JSON.parse(run(...args, '--engine', 'bpf'));
      const model = JSON.parse(run(...args, '--engine', 'model'));
      t.deepEqual(bpf.ingress, model.ingress, `${from} ${port}`);
      t.is(bpf.ingress.policy, policy, `${from} ${port}: decided by ${policy ?? 'the isolation'}`);
      t.is(bpf.verdict, policy ? 'allow' : 'deny');
    }
  } finally {
    fs.rmSync(state, { recursive: true, force: true });
  }
});
