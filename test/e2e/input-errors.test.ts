// Input that must never open traffic, on a lab node with real pods and a running agent:
// `policyTypes: []` isolates ingress as the API server defaults it, and an enforced policy
// edited to an apiVersion or kind netfence does not read, or duplicated by a new file that
// sorts first, stays enforced at its last valid version. At each step the denied pair stays
// denied, /readyz lists the one error (file, line, object), the log has it at error level
// and netfence_errors_total{stage="validate"} moves once; a Deployment is only a logged warning.
// A ClusterNetworkPolicy rule with an unsupported peer is enforced failed closed, its error
// listed the same way.
import test, { type ExecutionContext } from 'ava';
import { AgentLab, demoPodsAbc, labConfig } from './helpers/agent-lab';

// b admits only a on TCP 80 (policyTypes absent: Ingress).
const WEB = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: web, namespace: demo }
spec:
  podSelector: { matchLabels: { app: b } }
  ingress: [{ from: [{ podSelector: { matchLabels: { app: a } } }], ports: [{ port: 80 }] }]
`;
// The same object, admitting everyone: enforced in web's place, c would reach b.
const WEB_OPEN = WEB.replace(/ingress: .*\n/, 'ingress: [{}]\n');
// A default deny of c's ingress as the API server reads it.
const ISOLATE_C = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: isolate-c, namespace: demo }
spec: { podSelector: { matchLabels: { app: c } }, policyTypes: [] }
`;

const TO_B = [
  { from: 'demo/a', to: 'demo/b', port: '80/TCP' },
  { from: 'demo/c', to: 'demo/b', port: '80/TCP' },
];

let lab: AgentLab;
test.before(async () => {
  lab = await AgentLab.up('input', {
    'pods.yaml': demoPodsAbc(),
    'netfence.yaml': labConfig(),
    'web.yaml': WEB,
    'isolate-c.yaml': ISOLATE_C,
  });
  await lab.startAgent();
});
test.after.always(async () => {
  await lab?.down();
});

const validateErrors = async (): Promise<number> => {
  const m = /^netfence_errors_total\{[^}]*stage="validate"[^}]*\} (\d+)$/m.exec(await lab.http('/metrics'));
  return m ? Number(m[1]) : 0;
};
const listed = async (): Promise<string[]> => (JSON.parse(await lab.http('/readyz')) as { errors: string[] }).errors;

test.serial('policyTypes: [] isolates ingress like an absent list (not rejected, not open)', async (t) => {
  t.deepEqual(
    await lab.probe([
      { from: 'demo/a', to: 'demo/c', port: '80/TCP' },
      { from: 'demo/c', to: 'demo/a', port: '80/TCP' },
      ...TO_B,
    ]),
    ['deny', 'allow', 'allow', 'deny'],
    'c isolated for ingress only; web enforced',
  );
  t.deepEqual(await listed(), []);
});

async function step(t: ExecutionContext, what: string, change: () => void, error: RegExp): Promise<void> {
  const before = await validateErrors();
  const logged = lab.agentRecords().length;
  change();
  t.deepEqual(await lab.probe(TO_B), ['allow', 'deny'], `${what}: while the agent picks it up`);
  await lab.ready();
  t.deepEqual(await lab.probe(TO_B), ['allow', 'deny'], `${what}: web's last valid version stays enforced`);
  const errors = await listed();
  t.is(errors.length, 1, `${what}: ${JSON.stringify(errors)}`);
  t.regex(errors[0] ?? '', error, what);
  t.is((await validateErrors()) - before, 1, `${what}: counted once`);
  const records = lab.agentRecords().slice(logged);
  t.true(
    records.some((r) => r.level === 50 && r.stage === 'validate' && error.test(String(r.msg))),
    `${what}: logged at error level`,
  );
  t.true(
    records.some((r) => String(r.msg).includes('keep enforcing the last valid version of NetworkPolicy demo/web')),
    what,
  );
}

test.serial('an unknown apiVersion, an unknown kind and a duplicate never drop the enforced policy', async (t) => {
  await step(
    t,
    'networking.k8s.io/v2',
    () => lab.write('web.yaml', WEB.replace('networking.k8s.io/v1', 'networking.k8s.io/v2')),
    /web\.yaml:1: load NetworkPolicy demo\/web: apiVersion: netfence does not read NetworkPolicy at apiVersion networking\.k8s\.io\/v2/,
  );
  await step(
    t,
    'kind NetworkPolicyy',
    () => lab.write('web.yaml', WEB.replace('kind: NetworkPolicy', 'kind: NetworkPolicyy')),
    /web\.yaml:2: load NetworkPolicyy demo\/web: kind: unknown kind "NetworkPolicyy"/,
  );
  await step(
    t,
    'aa-dup.yaml',
    () => {
      lab.write('web.yaml', WEB);
      lab.write('aa-dup.yaml', WEB_OPEN);
    },
    /aa-dup\.yaml:3: load NetworkPolicy demo\/web: metadata\.name: duplicate object, defined 2 times \(\S*aa-dup\.yaml:1, \S*web\.yaml:1\)/,
  );

  const counted = await validateErrors();
  const logged = lab.agentRecords().length;
  lab.write(
    'other.yaml',
    'apiVersion: v1\nkind: Namespace\nmetadata: { name: other }\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: { name: app, namespace: other }\n',
  );
  await lab.ready();
  t.is(
    await validateErrors(),
    counted,
    'a later pass with the same error counts nothing more; a Deployment is no error',
  );
  const warned = lab
    .agentRecords()
    .slice(logged)
    .filter((r) => r.level === 40 && String(r.msg).includes('skip Deployment other/app'));
  t.is(warned.length, 1, 'the Deployment is skipped with one warning in the log');
  t.is((await listed()).length, 1, 'and is not listed on /readyz');

  lab.remove('aa-dup.yaml');
  lab.remove('other.yaml');
  await lab.ready();
  t.deepEqual(await listed(), [], 'resolved: no errors listed');
  t.deepEqual(await lab.probe(TO_B), ['allow', 'deny']);
});

test.serial(
  'a ClusterNetworkPolicy Deny with an unsupported peer fails closed: enforced, listed and counted once',
  async (t) => {
    const before = await validateErrors();
    lab.write(
      'guard.yaml',
      `apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: { name: guard }
spec:
  tier: Admin
  priority: 1
  subject: { pods: { podSelector: { matchLabels: { app: a } } } }
  egress: [{ action: Deny, to: [{ domainNames: [example.com] }], protocols: [{ tcp: { destinationPort: { number: 80 } } }] }]
`,
    );
    await lab.ready();
    t.deepEqual(await lab.probe(TO_B), ['deny', 'deny'], 'a denies every peer on TCP 80, not only example.com');
    const errors = await listed();
    t.is(errors.length, 1, JSON.stringify(errors));
    t.regex(
      errors[0] ?? '',
      /guard\.yaml:8: load ClusterNetworkPolicy guard: spec\.egress\[0\]\.to\[0\]\.domainNames: peer type "domainNames" is not supported: the Deny rule fails closed/,
    );
    t.is((await validateErrors()) - before, 1);

    lab.remove('guard.yaml');
    await lab.ready();
    t.deepEqual(await listed(), []);
    t.deepEqual(await lab.probe(TO_B), ['allow', 'deny']);
  },
);
