// The input rules the model reads as the API specifies must come out the same from the
// compiled program (BPF_PROG_TEST_RUN) as from the reference: Pass in the Baseline tier
// (it ends at the default allow), ClusterNetworkPolicy rules that fail closed (a Deny with
// an unsupported peer denies every peer on its ports; such an Accept matches nothing), and
// `policyTypes: []` isolating ingress. Every ordered pod pair, verdict and deciding rule.
import test from 'ava';
import { native } from '../../src/datapath/native';
import type { L4Protocol } from '../../src/model/rules';
import { evaluate } from '../../src/reference/evaluate';
import { snapshotFromYaml } from '../../src/sources/directory';
import { BpfEngine } from '../../src/trace/bpf-engine';
import { matrixPairs } from '../../src/trace/probe';
import { BASE } from '../unit/_state';
import { objectPath } from './objects';

const cnp = (name: string, spec: string) =>
  `apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: { name: ${name} }\nspec:\n${spec}`;

const STATE = [
  BASE,
  cnp(
    'base-pass',
    '  tier: Baseline\n  priority: 1\n  subject: { namespaces: {} }\n  ingress: [{ action: Pass, from: [{ namespaces: { matchLabels: { team: b } } }] }]\n',
  ),
  cnp(
    'base-deny',
    '  tier: Baseline\n  priority: 2\n  subject: { namespaces: {} }\n  ingress: [{ action: Deny, from: [{ namespaces: {} }] }]\n',
  ),
  cnp(
    'unsupported',
    `  tier: Admin
  priority: 1
  subject: { namespaces: { matchLabels: { team: a } } }
  ingress: [{ action: Accept, from: [{ nodes: {} }] }]
  egress: [{ name: no-web, action: Deny, to: [{ domainNames: [example.com] }], protocols: [{ tcp: { destinationPort: { number: 8080 } } }] }]
`,
  ),
  'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: db, namespace: b }\nspec: { podSelector: { matchLabels: { role: db } }, policyTypes: [] }\n',
].join('\n---\n');

const PROBES: { port: number; protocol: L4Protocol }[] = [
  { port: 8080, protocol: 'TCP' },
  { port: 53, protocol: 'UDP' },
];

test('baseline Pass, fail-closed ClusterNetworkPolicy rules and policyTypes []: bpf and reference agree', (t) => {
  const s = snapshotFromYaml(STATE, 'state.yaml');
  t.deepEqual(
    s.errors.map((e) => e.field),
    ['spec.ingress[0].from[0].nodes', 'spec.egress[0].to[0].domainNames'],
    'only the fail-closed reports',
  );
  const engine = BpfEngine.open(native, objectPath('netfence'));
  try {
    t.deepEqual(engine.load(s), []);
    const verdicts = new Map<string, string>();
    for (const probe of PROBES) {
      for (const p of matrixPairs(s, 4)) {
        const pkt = { src: p.src, dst: p.dst, ...probe, dstPort: probe.port };
        const [got, want] = [engine.evaluate(pkt), evaluate(s, pkt)];
        t.is(
          JSON.stringify({ e: got.egress, i: got.ingress }),
          JSON.stringify({ e: want.egress, i: want.ingress }),
          `${p.from}>${p.to} ${probe.port}/${probe.protocol}`,
        );
        verdicts.set(
          `${p.from}>${p.to} ${probe.port}`,
          `${want.verdict} ${want.egress.rule ?? ''}|${want.ingress.policy ?? want.ingress.tier}`,
        );
      }
    }
    // The cases mean what they say (the reference's reading, which the program matched).
    t.is(
      verdicts.get('a/p1>b/p1 8080'),
      'deny egress[0] no-web|ClusterNetworkPolicy base-deny',
      'the Deny failed closed: every peer on 8080',
    );
    t.is(
      verdicts.get('a/p1>b/p1 53'),
      'deny |ClusterNetworkPolicy base-deny',
      'not its port; team a is not passed in baseline',
    );
    t.is(verdicts.get('b/p2>b/p1 8080'), 'allow |default', 'baseline Pass ends at the default allow, before base-deny');
    t.is(verdicts.get('b/p1>a/p1 53'), 'allow |default', 'the Accept with an unsupported peer matches nothing; passed');
    t.is(verdicts.get('b/p1>b/p2 53'), 'deny |netpol', 'policyTypes [] isolates b/p2 ingress');
  } finally {
    engine.close();
  }
});
