// The reference evaluator, one semantic point per test, on the small BASE state:
// namespaces a and b (team=<ns>), pods p1 (role=web) and p2 (role=db) in each, with
// container ports http=8080/TCP, dns=53/UDP, dns-tcp=5353/TCP; node-1 (10.0.0.1,
// fd00::1, role=worker) hosts them; node-2 (10.0.0.2, role=edge).
import test from 'ava';
import { evaluate } from '../../src/reference/evaluate';
import { resolveAddress } from '../../src/reference/address';
import { podMatrix } from '../../src/reference/matrix';
import { ISOLATION_RULE, NODE_LOCAL_RULE } from '../../src/model/rules';
import { BASE, check, pod, state } from './_state';
import { snapshotFromYaml } from '../../src/sources/directory';

const np = (name: string, ns: string, spec: string) =>
  `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: ${name}, namespace: ${ns} }\nspec:\n${spec}`;
const cnp = (name: string, spec: string) =>
  `apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: { name: ${name} }\nspec:\n${spec}`;
const nodePolicy = (name: string, spec: string) =>
  `apiVersion: crd.antrea.io/v1beta1\nkind: ClusterNetworkPolicy\nmetadata: { name: ${name} }\nspec:\n${spec}`;
const DENY_INGRESS_A = np('deny', 'a', '  podSelector: {}\n');
const ALLOW_FROM_B = np(
  'from-b',
  'a',
  '  podSelector: {}\n  ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: b } } }] }]\n',
);

test('no policy: both sides allow by default', (t) => {
  const v = check(state(), 'a/p1', 'b/p2');
  t.deepEqual(v, {
    verdict: 'allow',
    egress: { verdict: 'allow', tier: 'default' },
    ingress: { verdict: 'allow', tier: 'default' },
  });
});

test('netpol isolation denies with the synthetic isolation rule; an allow names policy and rule', (t) => {
  const s = state(DENY_INGRESS_A, ALLOW_FROM_B);
  t.deepEqual(check(s, 'a/p2', 'a/p1').ingress, { verdict: 'deny', tier: 'netpol', rule: ISOLATION_RULE });
  t.deepEqual(check(s, 'b/p1', 'a/p1'), {
    verdict: 'allow',
    egress: { verdict: 'allow', tier: 'default' },
    ingress: { verdict: 'allow', tier: 'netpol', policy: 'NetworkPolicy a/from-b', rule: 'ingress[0]' },
  });
  t.is(check(s, 'a/p1', 'b/p1').verdict, 'allow', 'ingress isolation does not touch egress');
});

test('netpol: the allows of every selecting policy are a union', (t) => {
  const s = state(
    np(
      'web-from-a',
      'a',
      '  podSelector: { matchLabels: { role: web } }\n  ingress: [{ from: [{ podSelector: {} }] }]\n',
    ),
    np(
      'all-from-b',
      'a',
      '  podSelector: {}\n  ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: b } } }] }]\n',
    ),
  );
  t.is(check(s, 'a/p2', 'a/p1').verdict, 'allow');
  t.is(check(s, 'b/p2', 'a/p1').verdict, 'allow');
  t.is(check(s, 'a/p1', 'a/p2').verdict, 'deny', 'p2 is selected only by all-from-b');
  t.is(check(s, 'b/p2', 'a/p2').verdict, 'allow');
});

test('egress and ingress are evaluated independently; both must allow', (t) => {
  const s = state(np('no-egress', 'b', '  podSelector: {}\n  policyTypes: [Egress]\n'), ALLOW_FROM_B);
  const v = check(s, 'b/p1', 'a/p1');
  t.is(v.verdict, 'deny');
  t.deepEqual(v.egress, { verdict: 'deny', tier: 'netpol', rule: ISOLATION_RULE });
  t.is(v.ingress.verdict, 'allow');
});

test('an address outside the cluster has no policy on its side', (t) => {
  const s = state(
    np(
      'out',
      'a',
      '  podSelector: {}\n  policyTypes: [Egress]\n  egress: [{ to: [{ ipBlock: { cidr: 192.0.2.0/24 } }] }]\n',
    ),
  );
  const v = evaluate(s, { src: '10.1.0.1', dst: '192.0.2.7', protocol: 'TCP', dstPort: 443 });
  t.is(v.verdict, 'allow');
  t.deepEqual(v.ingress, { verdict: 'allow', tier: 'default' });
  t.is(evaluate(s, { src: '10.1.0.1', dst: '198.51.100.1', protocol: 'TCP', dstPort: 443 }).verdict, 'deny');
  t.is(evaluate(s, { src: '198.51.100.1', dst: '10.1.0.1', protocol: 'TCP', dstPort: 8080 }).verdict, 'allow');
});

test('ipBlock except shrinks its own peer only; it is not a deny', (t) => {
  const s = state(
    np(
      'cidr',
      'a',
      '  podSelector: {}\n  ingress: [{ from: [{ ipBlock: { cidr: 10.2.0.0/16, except: [10.2.0.1/32] } }, { podSelector: {}, namespaceSelector: {} }] }]\n',
    ),
    np(
      'only-cidr',
      'b',
      '  podSelector: {}\n  ingress: [{ from: [{ ipBlock: { cidr: 10.1.0.0/16, except: [10.1.0.1/32] } }] }]\n',
    ),
  );
  t.is(check(s, 'b/p1', 'a/p1').verdict, 'allow', 'excepted by the ipBlock, allowed by the other peer');
  t.is(check(s, 'a/p1', 'b/p1').verdict, 'deny', 'excepted and no other peer');
  t.is(check(s, 'a/p2', 'b/p1').verdict, 'allow');
});

test('ports: endPort is inclusive, protocol defaults to TCP, SCTP never opens TCP', (t) => {
  const s = state(
    DENY_INGRESS_A,
    np(
      'range',
      'a',
      '  podSelector: {}\n  ingress: [{ ports: [{ port: 1000, endPort: 2000 }, { protocol: SCTP, port: 8080 }] }]\n',
    ),
  );
  t.is(check(s, 'b/p1', 'a/p1', 1000).verdict, 'allow');
  t.is(check(s, 'b/p1', 'a/p1', 2000).verdict, 'allow');
  t.is(check(s, 'b/p1', 'a/p1', 2001).verdict, 'deny');
  t.is(check(s, 'b/p1', 'a/p1', 999).verdict, 'deny');
  t.is(check(s, 'b/p1', 'a/p1', 1500, 'UDP').verdict, 'deny', 'the range is TCP');
  t.is(check(s, 'b/p1', 'a/p1', 8080, 'SCTP').verdict, 'allow');
  t.is(check(s, 'b/p1', 'a/p1', 8080, 'TCP').verdict, 'deny');
});

test('ICMP: rules with ports never match it; a rule without ports does', (t) => {
  const s = state(
    np('ports', 'a', '  podSelector: { matchLabels: { role: web } }\n  ingress: [{ ports: [{ port: 8080 }] }]\n'),
    np('all', 'a', '  podSelector: { matchLabels: { role: db } }\n  ingress: [{}]\n'),
  );
  t.is(check(s, 'b/p1', 'a/p1', 0, 'ICMP').verdict, 'deny');
  t.is(check(s, 'b/p1', 'a/p2', 0, 'ICMP').verdict, 'allow');
});

test('named ports resolve on the destination pod, per protocol', (t) => {
  const s = state(
    pod('b', 'other', '10.2.0.9', {}, '').replace(
      '{ name: http, containerPort: 8080 }',
      '{ name: http, containerPort: 9000 }',
    ),
    np(
      'egress-http',
      'a',
      '  podSelector: {}\n  egress: [{ ports: [{ port: http }, { protocol: UDP, port: dns }] }]\n',
    ),
    np('ingress-http', 'b', '  podSelector: {}\n  ingress: [{ ports: [{ port: http }] }]\n'),
  );
  t.is(check(s, 'a/p1', 'b/p1', 8080).verdict, 'allow');
  t.is(check(s, 'a/p1', 'b/other', 9000).verdict, 'allow', 'the name means 9000 on this pod');
  t.is(check(s, 'a/p1', 'b/other', 8080).verdict, 'deny');
  t.is(check(s, 'a/p1', 'b/p1', 53, 'UDP').egress.verdict, 'allow');
  t.is(check(s, 'a/p1', 'b/p1', 5353, 'TCP').egress.verdict, 'deny', 'dns is UDP only');
  t.is(
    evaluate(s, { src: '10.1.0.1', dst: '192.0.2.1', protocol: 'TCP', dstPort: 8080 }).egress.verdict,
    'deny',
    'no pod, no name',
  );
});

test("traffic from the pod's own node passes ingress isolation; other nodes do not; egress is not exempt", (t) => {
  const s = state(DENY_INGRESS_A, np('no-egress', 'b', '  podSelector: {}\n  policyTypes: [Egress]\n'));
  t.deepEqual(check(s, 'node/node-1', 'a/p1').ingress, { verdict: 'allow', tier: 'netpol', rule: NODE_LOCAL_RULE });
  t.is(evaluate(s, { src: 'fd00::1', dst: '10.1.0.1', protocol: 'TCP', dstPort: 1 }).verdict, 'allow');
  t.deepEqual(check(s, 'node/node-2', 'a/p1').ingress, { verdict: 'deny', tier: 'netpol', rule: ISOLATION_RULE });
  t.is(check(s, 'b/p1', 'node/node-1').verdict, 'deny');
});

test('an endpoint talking to itself is not subject to any policy', (t) => {
  const s = state(
    np('deny-all', 'a', '  podSelector: {}\n  policyTypes: [Ingress, Egress]\n'),
    cnp(
      'deny',
      '  tier: Admin\n  priority: 0\n  subject: { namespaces: {} }\n  ingress: [{ action: Deny, from: [{ namespaces: {} }] }]\n',
    ),
  );
  t.deepEqual(check(s, 'a/p1', 'a/p1'), {
    verdict: 'allow',
    egress: { verdict: 'allow', tier: 'default' },
    ingress: { verdict: 'allow', tier: 'default' },
  });
  t.is(check(s, 'a/p2', 'a/p1').verdict, 'deny');
});

test('admin tier: priority order, rule order, Deny beats a NetworkPolicy allow, Accept beats isolation', (t) => {
  const s = state(
    DENY_INGRESS_A,
    ALLOW_FROM_B,
    cnp(
      'p20-accept',
      '  tier: Admin\n  priority: 20\n  subject: { namespaces: { matchLabels: { team: a } } }\n  ingress: [{ name: all, action: Accept, from: [{ namespaces: {} }] }]\n',
    ),
    cnp(
      'p10-deny-db',
      `  tier: Admin
  priority: 10
  subject: { namespaces: { matchLabels: { team: a } } }
  ingress:
    - { name: let-web, action: Accept, from: [{ pods: { namespaceSelector: {}, podSelector: { matchLabels: { role: web } } } }], protocols: [{ tcp: { destinationPort: { number: 8080 } } }] }
    - { name: no-db, action: Deny, from: [{ pods: { namespaceSelector: {}, podSelector: { matchLabels: { role: db } } } }] }
`,
    ),
  );
  t.deepEqual(check(s, 'b/p2', 'a/p1').ingress, {
    verdict: 'deny',
    tier: 'admin',
    policy: 'ClusterNetworkPolicy p10-deny-db',
    rule: 'ingress[1] no-db',
  });
  t.deepEqual(check(s, 'b/p1', 'a/p1').ingress, {
    verdict: 'allow',
    tier: 'admin',
    policy: 'ClusterNetworkPolicy p10-deny-db',
    rule: 'ingress[0] let-web',
  });
  t.deepEqual(check(s, 'b/p1', 'a/p1', 9).ingress.policy, 'ClusterNetworkPolicy p20-accept');
  t.deepEqual(check(s, 'a/p1', 'a/p2', 9).ingress, {
    verdict: 'allow',
    tier: 'admin',
    policy: 'ClusterNetworkPolicy p20-accept',
    rule: 'ingress[0] all',
  });
});

test('Pass skips the rest of the admin tier: NetworkPolicy decides, else baseline, else default', (t) => {
  const pass = cnp(
    'pass',
    '  tier: Admin\n  priority: 1\n  subject: { namespaces: {} }\n  ingress: [{ action: Pass, from: [{ namespaces: { matchLabels: { team: b } } }] }]\n',
  );
  const deny = cnp(
    'deny-later',
    '  tier: Admin\n  priority: 2\n  subject: { namespaces: {} }\n  ingress: [{ action: Deny, from: [{ namespaces: {} }] }]\n',
  );
  const base = cnp(
    'base',
    '  tier: Baseline\n  priority: 1\n  subject: { namespaces: { matchLabels: { team: b } } }\n  ingress: [{ name: b-closed, action: Deny, from: [{ namespaces: {} }] }]\n',
  );
  const s = state(pass, deny, base, DENY_INGRESS_A, ALLOW_FROM_B);
  t.deepEqual(check(s, 'b/p1', 'a/p1').ingress.policy, 'NetworkPolicy a/from-b', 'passed to netpol, which allows');
  t.deepEqual(check(s, 'b/p1', 'b/p2').ingress, {
    verdict: 'deny',
    tier: 'baseline',
    policy: 'ClusterNetworkPolicy base',
    rule: 'ingress[0] b-closed',
  });
  t.deepEqual(
    check(s, 'a/p1', 'b/p2').ingress.policy,
    'ClusterNetworkPolicy deny-later',
    'not passed: the next admin policy applies',
  );
  const onlyPass = state(pass);
  t.deepEqual(check(onlyPass, 'b/p1', 'a/p1').ingress, { verdict: 'allow', tier: 'default' });
});

test('Pass in the baseline tier skips the rest of it: the default allow decides', (t) => {
  const pass = cnp(
    'base-pass',
    '  tier: Baseline\n  priority: 1\n  subject: { namespaces: {} }\n  ingress: [{ action: Pass, from: [{ namespaces: { matchLabels: { team: b } } }] }]\n',
  );
  const deny = cnp(
    'base-deny',
    '  tier: Baseline\n  priority: 2\n  subject: { namespaces: {} }\n  ingress: [{ action: Deny, from: [{ namespaces: {} }] }]\n',
  );
  const s = state(pass, deny);
  t.deepEqual(
    check(s, 'b/p1', 'a/p1').ingress,
    { verdict: 'allow', tier: 'default' },
    'passed: the later baseline Deny never runs',
  );
  t.deepEqual(check(s, 'a/p2', 'a/p1').ingress.policy, 'ClusterNetworkPolicy base-deny', 'not passed');
  t.is(
    check(state(pass, deny, DENY_INGRESS_A), 'b/p1', 'a/p1').ingress.rule,
    ISOLATION_RULE,
    'a NetworkPolicy still decides before baseline',
  );
});

test('a ClusterNetworkPolicy rule that fails closed: Deny with an unsupported peer denies every peer on its ports', (t) => {
  const s = snapshotFromYaml(
    [
      BASE,
      cnp(
        'dns-only',
        '  tier: Admin\n  priority: 1\n  subject: { namespaces: { matchLabels: { team: a } } }\n  egress:\n    - { action: Accept, to: [{ domainNames: [example.com] }] }\n    - { name: no-web, action: Deny, to: [{ domainNames: [example.com] }], protocols: [{ tcp: { destinationPort: { number: 8080 } } }] }\n',
      ),
    ].join('\n---\n'),
  );
  t.is(s.errors.length, 2, 'both rules are reported');
  t.deepEqual(check(s, 'a/p1', 'b/p1').egress, {
    verdict: 'deny',
    tier: 'admin',
    policy: 'ClusterNetworkPolicy dns-only',
    rule: 'egress[1] no-web',
  });
  t.is(
    check(s, 'a/p1', 'b/p1', 53, 'UDP').verdict,
    'allow',
    'other ports: the Accept rule matched nothing, the default allows',
  );
  t.is(check(s, 'b/p1', 'a/p1').verdict, 'allow', 'subjects are namespace a only');
});

test('baseline tier: applies only to endpoints no NetworkPolicy selects; Accept and Deny', (t) => {
  const s = state(
    cnp(
      'closed',
      '  tier: Baseline\n  priority: 5\n  subject: { namespaces: {} }\n  ingress: [{ action: Deny, from: [{ namespaces: {} }] }]\n',
    ),
    cnp(
      'open-web',
      '  tier: Baseline\n  priority: 1\n  subject: { pods: { podSelector: { matchLabels: { role: web } } } }\n  ingress: [{ action: Accept, from: [{ namespaces: {} }] }]\n',
    ),
    ALLOW_FROM_B,
  );
  t.is(check(s, 'b/p1', 'a/p2').ingress.tier, 'netpol', 'selected by a NetworkPolicy: baseline never runs');
  t.is(check(s, 'a/p1', 'a/p2').ingress.rule, ISOLATION_RULE);
  t.deepEqual(check(s, 'a/p1', 'b/p1').ingress.policy, 'ClusterNetworkPolicy open-web');
  t.deepEqual(check(s, 'a/p1', 'b/p2').ingress, {
    verdict: 'deny',
    tier: 'baseline',
    policy: 'ClusterNetworkPolicy closed',
    rule: 'ingress[0]',
  });
});

test('ClusterNetworkPolicy egress peers: nodes and networks', (t) => {
  const s = state(
    cnp(
      'egress',
      `  tier: Admin
  priority: 1
  subject: { namespaces: { matchLabels: { team: a } } }
  egress:
    - { name: edge, action: Accept, to: [{ nodes: { matchLabels: { role: edge } } }] }
    - { name: no-nodes, action: Deny, to: [{ networks: [10.0.0.0/24] }] }
    - { name: no-v6, action: Deny, to: [{ networks: ["::/0"] }] }
`,
    ),
  );
  t.is(check(s, 'a/p1', 'node/node-2').egress.rule, 'egress[0] edge');
  t.is(check(s, 'a/p1', 'node/node-1').egress.rule, 'egress[1] no-nodes');
  t.is(
    evaluate(s, { src: '10.1.0.1', dst: '2001:db8::1', protocol: 'UDP', dstPort: 53 }).egress.rule,
    'egress[2] no-v6',
  );
  t.is(evaluate(s, { src: '10.1.0.1', dst: '192.0.2.1', protocol: 'UDP', dstPort: 53 }).verdict, 'allow');
  t.is(check(s, 'b/p1', 'node/node-1').verdict, 'allow', 'subject is namespace a only');
});

test('networks: MultiNetworkPolicy only on its networks; NetworkPolicy and CNP only on the primary network', (t) => {
  const attach = (ns: string, name: string, ip: string, ip2: string) =>
    pod(ns, name, ip).replace(
      `metadata: { name: ${name}, namespace: ${ns}, labels: { app: "${name}" } }`,
      `metadata:\n  name: ${name}\n  namespace: ${ns}\n  labels: { app: ${name} }\n  annotations:\n    k8s.v1.cni.cncf.io/network-status: '[{"name":"a/net1","ips":["${ip2}"]}]'`,
    );
  const s = state(
    attach('a', 'm1', '10.1.0.11', '192.168.1.11'),
    attach('b', 'm2', '10.2.0.12', '192.168.1.12'),
    DENY_INGRESS_A,
    cnp(
      'deny-all',
      '  tier: Admin\n  priority: 1\n  subject: { namespaces: { matchLabels: { team: b } } }\n  ingress: [{ action: Deny, from: [{ namespaces: {} }] }]\n',
    ),
    `apiVersion: k8s.cni.cncf.io/v1beta1
kind: MultiNetworkPolicy
metadata:
  name: mnp
  namespace: b
  annotations: { k8s.v1.cni.cncf.io/policy-for: a/net1 }
spec:
  podSelector: { matchLabels: { app: m2 } }
  ingress: [{ from: [{ podSelector: { matchLabels: { app: nobody } } }] }]
`,
  );
  t.deepEqual(check(s, 'a/m1', 'b/m2', 8080, 'TCP', 'a/net1').ingress, {
    verdict: 'deny',
    tier: 'netpol',
    rule: ISOLATION_RULE,
  });
  t.is(check(s, 'b/m2', 'a/m1', 8080, 'TCP', 'a/net1').verdict, 'allow', 'the NetworkPolicy of a is primary-only');
  t.is(check(s, 'a/m1', 'b/m2', 8080, 'TCP').ingress.tier, 'admin', 'on the primary network the CNP applies');
  t.is(check(s, 'b/m2', 'a/m1', 8080, 'TCP').ingress.rule, ISOLATION_RULE);
  const other = evaluate(s, {
    src: '192.168.1.11',
    dst: '192.168.1.12',
    protocol: 'TCP',
    dstPort: 8080,
    network: 'a/other',
  });
  t.deepEqual(
    other,
    { verdict: 'allow', egress: { verdict: 'allow', tier: 'default' }, ingress: { verdict: 'allow', tier: 'default' } },
    'not attached there: no endpoints',
  );
});

test('node endpoints: system rules first, then node policies by Antrea tier; hostNetwork pods are the node', (t) => {
  const dropAll = nodePolicy(
    'drop-all',
    '  tier: baseline\n  priority: 1\n  appliedTo: [{ nodeSelector: {} }]\n  ingress: [{ name: closed, action: Drop }]\n',
  );
  const ssh = nodePolicy(
    'ssh',
    '  tier: securityops\n  priority: 5\n  appliedTo: [{ nodeSelector: { matchLabels: { role: worker } } }]\n  ingress: [{ name: ssh, action: Allow, from: [{ ipBlock: { cidr: 10.1.0.0/16 } }], ports: [{ port: 22 }] }]\n',
  );
  const app = nodePolicy(
    'app',
    '  tier: application\n  priority: 1\n  appliedTo: [{ nodeSelector: {} }]\n  ingress: [{ name: no-ssh, action: Drop, ports: [{ port: 22 }] }]\n',
  );
  const s = state(dropAll, ssh, app, pod('a', 'agent', '10.0.0.1', {}, '  hostNetwork: true\n'));
  t.deepEqual(check(s, 'a/p1', 'node/node-1', 10250).ingress, {
    verdict: 'allow',
    tier: 'system',
    policy: 'System privileged',
    rule: 'ingress[1] kubelet',
  });
  t.deepEqual(check(s, 'a/p1', 'node/node-1', 9402).ingress.rule, 'ingress[2] agent');
  t.deepEqual(check(s, 'a/p1', 'node/node-1', 22).ingress, {
    verdict: 'allow',
    tier: 'admin',
    policy: 'NodePolicy ssh',
    rule: 'ingress[0] ssh',
  });
  t.deepEqual(
    check(s, 'a/p1', 'node/node-2', 22).ingress.policy,
    'NodePolicy app',
    'securityops rule is for workers only',
  );
  t.deepEqual(check(s, 'a/p1', 'a/agent', 80).ingress, {
    verdict: 'deny',
    tier: 'baseline',
    policy: 'NodePolicy drop-all',
    rule: 'ingress[0] closed',
  });
  t.is(
    evaluate(s, { src: '127.0.0.1', dst: '10.0.0.1', protocol: 'TCP', dstPort: 80 }).ingress.rule,
    'ingress[0] loopback',
  );
  const noSystem = state(
    dropAll,
    'apiVersion: netfence.io/v1alpha1\nkind: NetfenceConfig\nprivileged: { enabled: false }\n',
  );
  t.is(check(noSystem, 'a/p1', 'node/node-1', 10250).verdict, 'deny');
});

test('a Service ClusterIP is DNATed to its first backend and evaluated there', (t) => {
  const s = state(
    `apiVersion: v1
kind: Service
metadata: { name: web, namespace: a }
spec:
  clusterIP: 10.96.0.10
  selector: { role: web }
  ports: [{ port: 80, targetPort: http }]
`,
    DENY_INGRESS_A,
    ALLOW_FROM_B,
  );
  const v = evaluate(s, { src: '10.2.0.1', dst: '10.96.0.10', protocol: 'TCP', dstPort: 80 });
  t.deepEqual(v.dnat, { service: 'a/web', pod: 'a/p1', ip: '10.1.0.1', port: 8080 });
  t.is(v.ingress.policy, 'NetworkPolicy a/from-b');
  t.is(evaluate(s, { src: '10.1.0.2', dst: '10.96.0.10', protocol: 'TCP', dstPort: 80 }).verdict, 'deny');
  t.is(
    evaluate(s, { src: '10.2.0.1', dst: '10.96.0.10', protocol: 'TCP', dstPort: 81 }).dnat,
    undefined,
    'no such service port',
  );
});

test('evaluate rejects malformed packets with a clear error', (t) => {
  const s = state();
  t.throws(() => evaluate(s, { src: '10.0.0.300', dst: '10.1.0.1', protocol: 'TCP', dstPort: 1 }), {
    message: 'evaluate packet: invalid source address "10.0.0.300"',
  });
  t.throws(() => evaluate(s, { src: '10.0.0.3', dst: '10.1.0.1', protocol: 'GRE' as 'TCP', dstPort: 1 }), {
    message: /unknown protocol "GRE"/,
  });
  t.throws(() => evaluate(s, { src: '10.0.0.3', dst: '10.1.0.1', protocol: 'TCP', dstPort: 65536 }), {
    message: /port 65536 out of range/,
  });
});

test('resolveAddress: pods, nodes and IPs, by family', (t) => {
  const s = state(
    pod('a', 'dual', '10.1.0.7').replace(
      'podIPs: [{ ip: 10.1.0.7 }]',
      'podIPs: [{ ip: 10.1.0.7 }, { ip: "fd00:1::0007" }]',
    ),
  );
  t.is(resolveAddress(s, 'a/dual'), '10.1.0.7');
  t.is(resolveAddress(s, 'a/dual', 6), 'fd00:1::7');
  t.is(resolveAddress(s, 'node/node-1', 6), 'fd00::1');
  t.is(resolveAddress(s, 'FD00:0::5'), 'fd00::5');
  t.throws(() => resolveAddress(s, 'a/ghost'), { message: 'resolve a/ghost: no pod a/ghost in the state' });
  t.throws(() => resolveAddress(s, 'node/ghost'), { message: 'resolve node/ghost: no node ghost in the state' });
  t.throws(() => resolveAddress(s, 'a/p1', 6), { message: 'resolve a/p1: no IPv6 address' });
  t.throws(() => resolveAddress(s, 'nonsense'), { message: /want "namespace\/pod"/ });
});

test('podMatrix: every ordered pair of distinct pods', (t) => {
  const pairs = podMatrix(state(DENY_INGRESS_A), { protocol: 'TCP', port: 8080 });
  t.is(pairs.length, 12);
  t.deepEqual(
    pairs.filter((p) => p.verdict === 'deny').map((p) => `${p.from}>${p.to}`),
    ['a/p1>a/p2', 'a/p2>a/p1', 'b/p1>a/p1', 'b/p1>a/p2', 'b/p2>a/p1', 'b/p2>a/p2'],
  );
});

// Every node isolated by a baseline Drop; and the privileged established rule turned off.
const DENY_NODES = nodePolicy(
  'drop',
  '  tier: baseline\n  priority: 1\n  appliedTo: [{ nodeSelector: {} }]\n  ingress: [{ action: Drop }]\n',
);
const NO_PRIVILEGED_ESTABLISHED =
  'apiVersion: netfence.io/v1alpha1\nkind: NetfenceConfig\nprivileged: { established: false }\n';

test('established packets pass conntrack: pods always, nodes while privileged.established', (t) => {
  const reply = { src: '10.1.0.1', dst: '10.0.0.1', protocol: 'TCP' as const, dstPort: 40000, established: true };
  const s = state(DENY_INGRESS_A, DENY_NODES);
  const est = { verdict: 'allow', tier: 'system', rule: 'established' };
  t.deepEqual(evaluate(s, reply), { verdict: 'allow', egress: est, ingress: est });
  t.deepEqual(evaluate(s, { ...reply, src: '10.0.0.1', dst: '10.1.0.1' }).ingress, est);
  t.is(evaluate(s, { ...reply, established: false }).verdict, 'deny');
  const off = state(DENY_INGRESS_A, DENY_NODES, NO_PRIVILEGED_ESTABLISHED);
  t.like(evaluate(off, reply), { verdict: 'deny', egress: est, ingress: { verdict: 'deny', tier: 'baseline' } });
});

test('related ICMP errors pass where established packets do; elsewhere they are ICMP packets', (t) => {
  const err = { src: '10.1.0.1', dst: '10.0.0.1', protocol: 'ICMP' as const, dstPort: 0, related: true };
  const s = state(DENY_INGRESS_A, DENY_NODES);
  const rel = { verdict: 'allow', tier: 'system', rule: 'related' };
  t.deepEqual(evaluate(s, err), { verdict: 'allow', egress: rel, ingress: rel });
  t.is(
    evaluate(s, { ...err, related: false }).verdict,
    'deny',
    'without a connection: isolation denies the ICMP packet',
  );
  const off = state(DENY_INGRESS_A, DENY_NODES, NO_PRIVILEGED_ESTABLISHED);
  t.like(evaluate(off, err), { verdict: 'deny', egress: rel, ingress: { verdict: 'deny', tier: 'baseline' } });
  t.throws(() => evaluate(s, { ...err, protocol: 'TCP', dstPort: 80 }), {
    message: 'evaluate packet: related needs protocol ICMP or ICMPv6, not TCP',
  });
});
