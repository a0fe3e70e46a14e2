// A restarted agent keeps enforcing the last valid version of an object whose current
// version is rejected (the last-good file beside the names file): web isolates b, is edited
// to an invalid CIDR (its old rules stay), and the agent is killed (-9) and restarted while
// the bad edit is still there. Without the file the new agent would skip web and open c -> b.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { lastGoodFilePath } from '../../src/agent/last-good-file';
import { AgentLab, demoPodsAbc, labConfig } from './helpers/agent-lab';

const web = (from: string): string => `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: web, namespace: demo }
spec:
  podSelector: { matchLabels: { app: b } }
  policyTypes: [Ingress]
  ingress: [{ from: [${from}], ports: [{ port: 80 }] }]
`;
const FROM_A = '{ podSelector: { matchLabels: { app: a } } }';
const FROM_C = '{ podSelector: { matchLabels: { app: c } } }';

const FILES = {
  'pods.yaml': demoPodsAbc(),
  'netfence.yaml': labConfig(),
  'web.yaml': web(FROM_A),
};

const TO_B = [
  { from: 'demo/a', to: 'demo/b', port: '80/TCP' },
  { from: 'demo/c', to: 'demo/b', port: '80/TCP' },
];

let lab: AgentLab;
test.before(async () => {
  lab = await AgentLab.up('lastgood', FILES);
});
test.after.always(async () => {
  if (!lab) return;
  const runDir = path.dirname(lastGoodFilePath(lab.node().bpffsRoot));
  await lab.down();
  fs.rmSync(runDir, { recursive: true, force: true });
});

test('a rejected edit keeps its last valid version across kill -9 and restart; the fix applies', async (t) => {
  const status = async () => JSON.parse(await lab.http('/readyz')) as { errors: string[] };
  const webError = (errors: string[]) =>
    errors.some((e) => e.includes('NetworkPolicy demo/web') && e.includes('ipBlock.cidr'));
  await lab.startAgent();
  t.deepEqual(await lab.probe(TO_B), ['allow', 'deny'], 'web: only a reaches b');

  lab.write('web.yaml', web(`{ ipBlock: { cidr: 10.0.0.0/33 } }, ${FROM_C}`));
  await lab.ready();
  t.true(webError((await status()).errors), 'the bad edit is listed');
  t.deepEqual(await lab.probe(TO_B), ['allow', 'deny'], 'web keeps its old rules');
  t.true(fs.existsSync(lastGoodFilePath(lab.node().bpffsRoot)), 'the last-good file is written');

  await lab.kill('SIGKILL');
  const logBefore = lab.agentLog().length;
  await lab.startAgent();
  t.deepEqual(
    await lab.probe(TO_B),
    ['allow', 'deny'],
    "after the restart: still web's last valid version, nothing opened",
  );
  const errors = (await status()).errors;
  t.true(webError(errors), JSON.stringify(errors));
  const log = lab.agentLog().slice(logBefore);
  t.true(log.includes('keep enforcing the last valid version of NetworkPolicy demo/web'), log.slice(-2000));
  t.false(log.includes('load last-good file'), 'the file loads without a warning');

  lab.write('web.yaml', web(FROM_C));
  await lab.ready();
  t.deepEqual((await status()).errors, [], 'fixed: no errors listed');
  t.deepEqual(await lab.probe(TO_B), ['deny', 'allow'], 'the fixed version applies: c reaches b, a no longer does');
});
