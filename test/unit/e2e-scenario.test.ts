// The e2e scenario format: every scenario file loads, and steps edit the working state.
import test from 'ava';
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { loadScenario, WorkingState, type K8sObject, type Step } from '../e2e/scenario';

const SCENARIOS = resolve(__dirname, '../../../test/e2e/scenarios');

test('every scenario file loads with a topology and steps', (t) => {
  const files = readdirSync(SCENARIOS).filter((f) => f.endsWith('.yaml'));
  t.true(files.length >= 8);
  for (const f of files) {
    const s = loadScenario(join(SCENARIOS, f));
    t.true(
      s.objects.some((o) => o.kind === 'Pod'),
      f,
    );
    t.true(s.steps.length > 0, f);
  }
});

const step = (s: Partial<Step>): Step => ({
  name: 's',
  apply: [],
  delete: [],
  relabel: [],
  probes: [],
  hold: {},
  held: {},
  tunnel: [],
  udpLoss: [],
  noTrace: false,
  ...s,
});

test('apply, relabel and delete edit one rendered state', (t) => {
  const pod: K8sObject = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'a', namespace: 'x', labels: { pod: 'a', keep: '1' } },
  };
  const ns: K8sObject = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'x' } };
  const np: K8sObject = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: 'p', namespace: 'x' },
    spec: {},
  };
  const ws = new WorkingState([pod, ns]);
  ws.applyStep(
    step({
      apply: [np],
      relabel: [
        { pod: 'x/a', labels: { pod: 'b', keep: null } },
        { namespace: 'x', labels: { team: 'red' } },
      ],
    }),
  );
  const docs = ws
    .render()
    .split('---\n')
    .map((d) => parse(d) as K8sObject);
  t.deepEqual(docs.find((d) => d.kind === 'Pod')?.metadata.labels, { pod: 'b' });
  t.deepEqual(docs.find((d) => d.kind === 'Namespace')?.metadata.labels, { team: 'red' });
  t.truthy(docs.find((d) => d.kind === 'NetworkPolicy'));
  t.deepEqual(pod.metadata.labels, { pod: 'a', keep: '1' }, 'the topology objects stay untouched');
  ws.applyStep(step({ delete: [{ kind: 'NetworkPolicy', namespace: 'x', name: 'p' }] }));
  t.false(ws.render().includes('NetworkPolicy'));
  t.throws(() => ws.applyStep(step({ delete: [{ kind: 'NetworkPolicy', namespace: 'x', name: 'p' }] })), {
    message: 'delete NetworkPolicy/x/p: not in the state',
  });
  t.throws(() => ws.applyStep(step({ relabel: [{ pod: 'x/zz', labels: {} }] })), { message: /relabel Pod\/x\/zz/ });
});
