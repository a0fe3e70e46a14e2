// Normalization of every policy kind into rules.ts Policies.
import test from 'ava';
import { snapshotFromYaml } from '../../src/sources/directory';
import type { Policy } from '../../src/model/rules';
import { comparePolicies, policyName, ruleName } from '../../src/model/rules';
import { antreaPriority } from '../../src/model/antrea';

function policies(yaml: string): Policy[] {
  const s = snapshotFromYaml(yaml, 'p.yaml');
  if (s.errors.length) throw new Error(JSON.stringify(s.errors));
  return s.policies.filter((p) => p.tier !== 'system');
}
function errors(yaml: string) {
  return snapshotFromYaml(yaml, 'p.yaml').errors;
}

const np = (spec: string, name = 'np') =>
  `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: ${name}, namespace: a }\nspec:\n${spec}`;
const cnp = (spec: string, name = 'cnp') =>
  `apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: { name: ${name} }\nspec:\n${spec}`;
const antrea = (spec: string, name = 'node-pol') =>
  `apiVersion: crd.antrea.io/v1beta1\nkind: ClusterNetworkPolicy\nmetadata: { name: ${name} }\nspec:\n${spec}`;

test('NetworkPolicy: policyTypes absent or empty default to Ingress, plus Egress when egress rules exist', (t) => {
  t.deepEqual(policies(np('  podSelector: {}\n'))[0].isolates, ['ingress']);
  t.deepEqual(policies(np('  podSelector: {}\n  egress: [{}]\n'))[0].isolates, ['ingress', 'egress']);
  t.deepEqual(policies(np('  podSelector: {}\n  egress: []\n'))[0].isolates, ['ingress']);
  t.deepEqual(policies(np('  podSelector: {}\n  policyTypes: [Egress]\n'))[0].isolates, ['egress']);
  // The API server defaults an empty list exactly like an absent one (SetDefaults_NetworkPolicy):
  // podSelector {} + policyTypes [] is the namespace's default deny of ingress.
  t.deepEqual(policies(np('  podSelector: {}\n  policyTypes: []\n'))[0].isolates, ['ingress']);
  const both = policies(np('  podSelector: {}\n  policyTypes: []\n  egress: [{ to: [{ podSelector: {} }] }]\n'))[0];
  t.deepEqual(both.isolates, ['ingress', 'egress']);
  t.deepEqual(
    both.rules.map((r) => r.direction),
    ['egress'],
    'the egress rule is kept',
  );
});

test('NetworkPolicy: an absent spec or podSelector selects every pod of the namespace, as the API decodes it', (t) => {
  const noSelector = policies(np('  ingress: [{ from: [{ podSelector: {} }] }]\n'))[0];
  t.deepEqual(noSelector.subject, { kind: 'pods', namespace: 'a', podSelector: {} });
  t.deepEqual(noSelector.isolates, ['ingress']);
  const noSpec = policies(
    'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: bare, namespace: a }\n',
  )[0];
  t.deepEqual(noSpec.subject, { kind: 'pods', namespace: 'a', podSelector: {} });
  t.deepEqual(noSpec.isolates, ['ingress'], 'a default deny of ingress');
  t.deepEqual(noSpec.rules, []);
  t.like(errors(np('  podSelector: []\n'))[0], { field: 'spec.podSelector', message: 'must be an object, got a list' });
});

test('NetworkPolicy: rules of a direction it does not isolate are dropped', (t) => {
  const [p] = policies(np('  podSelector: {}\n  policyTypes: [Ingress]\n  ingress: [{}]\n  egress: [{}]\n'));
  t.deepEqual(
    p.rules.map((r) => r.direction),
    ['ingress'],
  );
});

test('NetworkPolicy: absent/empty from and ports mean any peer and every port', (t) => {
  const [p] = policies(
    np('  podSelector: { matchLabels: { app: x } }\n  ingress:\n    - {}\n    - from: []\n      ports: []\n'),
  );
  t.deepEqual(p.subject, { kind: 'pods', namespace: 'a', podSelector: { matchLabels: { app: 'x' } } });
  t.is(p.tier, 'netpol');
  t.deepEqual(
    p.rules.map((r) => [r.peers, r.ports, r.action, r.index]),
    [
      [[{ kind: 'any' }], null, 'allow', 0],
      [[{ kind: 'any' }], null, 'allow', 1],
    ],
  );
});

test('NetworkPolicy: peers (pod selector = own namespace, namespace selector, both AND-ed, ipBlock)', (t) => {
  const [p] = policies(
    np(`  podSelector: {}
  ingress:
    - from:
        - podSelector: { matchLabels: { app: x } }
        - namespaceSelector: { matchLabels: { team: b } }
        - namespaceSelector: {}
          podSelector: { matchLabels: { app: y } }
        - ipBlock: { cidr: 10.1.2.3/16, except: [10.1.9.0/24] }
        - ipBlock: { cidr: "FD00::/8" }
`),
  );
  t.deepEqual(p.rules[0].peers, [
    { kind: 'pods', namespace: 'a', podSelector: { matchLabels: { app: 'x' } } },
    { kind: 'pods', namespaceSelector: { matchLabels: { team: 'b' } } },
    { kind: 'pods', namespaceSelector: {}, podSelector: { matchLabels: { app: 'y' } } },
    { kind: 'cidr', cidr: '10.1.0.0/16', except: ['10.1.9.0/24'] },
    { kind: 'cidr', cidr: 'fd00::/8', except: [] },
  ]);
});

test('NetworkPolicy: ports (protocol defaults to TCP, named ports kept, endPort inclusive)', (t) => {
  const [p] = policies(
    np(`  podSelector: {}
  ingress:
    - ports:
        - port: 80
        - { protocol: UDP, port: dns }
        - { protocol: SCTP, port: 1000, endPort: 2000 }
        - { protocol: UDP }
`),
  );
  t.deepEqual(p.rules[0].ports, [
    { protocol: 'TCP', port: 80 },
    { protocol: 'UDP', name: 'dns' },
    { protocol: 'SCTP', port: 1000, endPort: 2000 },
    { protocol: 'UDP' },
  ]);
});

test('NetworkPolicy: ipBlock with selectors, empty peers and endPort on names are errors', (t) => {
  t.like(
    errors(np('  podSelector: {}\n  ingress: [{ from: [{ ipBlock: { cidr: 10.0.0.0/8 }, podSelector: {} }] }]\n'))[0],
    {
      field: 'spec.ingress[0].from[0]',
    },
  );
  t.like(errors(np('  podSelector: {}\n  ingress: [{ from: [{}] }]\n'))[0], { field: 'spec.ingress[0].from[0]' });
  t.like(errors(np('  podSelector: {}\n  ingress: [{ ports: [{ port: http, endPort: 90 }] }]\n'))[0], {
    field: 'spec.ingress[0].ports[0].endPort',
  });
  t.like(
    errors(
      np('  podSelector: {}\n  ingress: [{ from: [{ ipBlock: { cidr: 10.0.0.0/8, except: [10.0.0.0/8] } }] }]\n'),
    )[0],
    {
      field: 'spec.ingress[0].from[0].ipBlock.except[0]',
    },
  );
});

test('ClusterNetworkPolicy: tiers, priority, actions, rule order and names', (t) => {
  const [p] = policies(
    cnp(`  tier: Admin
  priority: 7
  subject: { namespaces: { matchLabels: { team: a } } }
  ingress:
    - { name: first, action: Deny, from: [{ namespaces: {} }] }
    - { action: Pass, from: [{ pods: { namespaceSelector: {}, podSelector: { matchLabels: { app: x } } } }] }
    - { name: last, action: Accept, from: [{ pods: { podSelector: {} } }] }
  egress:
    - name: out
      action: Accept
      to: [{ networks: [10.0.0.0/8, "fd00::/8"] }, { nodes: { matchLabels: { role: edge } } }]
      protocols:
        - tcp: { destinationPort: { number: 443 } }
        - udp: { destinationPort: { range: { start: 1000, end: 2000 } } }
        - sctp: {}
`),
  );
  t.is(p.tier, 'admin');
  t.is(p.priority, 7);
  t.deepEqual(p.subject, { kind: 'pods', namespaceSelector: { matchLabels: { team: 'a' } }, podSelector: {} });
  t.deepEqual(p.rules.map(ruleName), ['ingress[0] first', 'ingress[1]', 'ingress[2] last', 'egress[0] out']);
  t.deepEqual(
    p.rules.map((r) => r.action),
    ['deny', 'pass', 'allow', 'allow'],
  );
  t.deepEqual(p.rules[1].peers, [{ kind: 'pods', namespaceSelector: {}, podSelector: { matchLabels: { app: 'x' } } }]);
  t.deepEqual(p.rules[2].peers, [{ kind: 'pods', namespaceSelector: {}, podSelector: {} }]);
  t.deepEqual(p.rules[3].peers, [
    { kind: 'cidr', cidr: '10.0.0.0/8', except: [] },
    { kind: 'cidr', cidr: 'fd00::/8', except: [] },
    { kind: 'nodes', nodeSelector: { matchLabels: { role: 'edge' } } },
  ]);
  t.deepEqual(p.rules[3].ports, [
    { protocol: 'TCP', port: 443 },
    { protocol: 'UDP', port: 1000, endPort: 2000 },
    { protocol: 'SCTP' },
  ]);
  t.is(policyName(p.ref), 'ClusterNetworkPolicy cnp');
});

test('ClusterNetworkPolicy: upstream v1beta1 (the v1alpha2 schema) reads as v1alpha2', (t) => {
  const spec = `  tier: Baseline
  priority: 3
  subject: { pods: { podSelector: { matchLabels: { app: db } } } }
  ingress: [{ action: Deny, from: [{ namespaces: {} }], protocols: [{ tcp: { destinationPort: { number: 5432 } } }] }]
`;
  const beta = cnp(spec).replace('policy.networking.k8s.io/v1alpha2', 'policy.networking.k8s.io/v1beta1');
  t.deepEqual(errors(beta), []);
  t.deepEqual(policies(beta), policies(cnp(spec)));
});

test('ClusterNetworkPolicy: a named port becomes one spec per protocol', (t) => {
  const [p] = policies(
    cnp(`  tier: Baseline
  priority: 0
  subject: { pods: { namespaceSelector: {}, podSelector: {} } }
  ingress: [{ action: Accept, from: [{ namespaces: {} }], protocols: [{ destinationNamedPort: http }] }]
`),
  );
  t.is(p.tier, 'baseline');
  t.deepEqual(p.rules[0].ports, [
    { protocol: 'TCP', name: 'http' },
    { protocol: 'UDP', name: 'http' },
    { protocol: 'SCTP', name: 'http' },
  ]);
});

test('ClusterNetworkPolicy: invalid objects are rejected with the field', (t) => {
  const subject = '  subject: { namespaces: {} }\n';
  const cases: [string, string][] = [
    ['  tier: Admin\n  priority: 1001\n' + subject, 'spec.priority'],
    ['  tier: Middle\n  priority: 1\n' + subject, 'spec.tier'],
    ['  tier: Admin\n  priority: 1\n  subject: { namespaces: {}, pods: { podSelector: {} } }\n', 'spec.subject'],
    ['  tier: Admin\n  priority: 1\n' + subject + '  ingress: [{ action: Deny, from: [] }]\n', 'spec.ingress[0].from'],
    [
      '  tier: Admin\n  priority: 1\n' + subject + '  ingress: [{ action: Drop, from: [{ namespaces: {} }] }]\n',
      'spec.ingress[0].action',
    ],
    [
      '  tier: Admin\n  priority: 1\n' +
        subject +
        '  ingress: [{ action: Deny, from: [{ namespaces: {}, pods: { podSelector: {} } }] }]\n',
      'spec.ingress[0].from[0]',
    ],
    [
      '  tier: Admin\n  priority: 1\n' +
        subject +
        '  ingress: [{ action: Deny, from: [{ namespaces: {} }], protocols: [{ tcp: {}, udp: {} }] }]\n',
      'spec.ingress[0].protocols[0]',
    ],
    [
      '  tier: Admin\n  priority: 1\n' +
        subject +
        '  egress: [{ action: Deny, to: [{ networks: [10.0.0.0/8] }], protocols: [{ destinationNamedPort: x }] }]\n',
      'spec.egress[0].protocols',
    ],
    [
      '  tier: Admin\n  priority: 1\n' + subject + '  egress: [{ action: Deny, to: [{ networks: [1.2.3.4] }] }]\n',
      'spec.egress[0].to[0].networks[0]',
    ],
    [
      '  tier: Admin\n  priority: 1\n' +
        subject +
        '  egress: [{ action: Deny, to: [{ namespaces: {} }], protocols: [{ tcp: { destinationPort: { range: { start: 9, end: 9 } } } }] }]\n',
      'spec.egress[0].protocols[0].tcp.destinationPort.range.end',
    ],
  ];
  for (const [spec, field] of cases) {
    const errs = errors(cnp(spec));
    t.is(errs.length, 1, field);
    t.is(errs[0]?.field, field);
    t.is(errs[0]?.object, 'ClusterNetworkPolicy cnp');
  }
});

test('ClusterNetworkPolicy: Pass is valid in both tiers', (t) => {
  for (const tier of ['Admin', 'Baseline']) {
    const [p] = policies(
      cnp(
        `  tier: ${tier}\n  priority: 1\n  subject: { namespaces: {} }\n  ingress: [{ action: Pass, from: [{ namespaces: {} }] }]\n`,
      ),
    );
    t.deepEqual(
      p.rules.map((r) => r.action),
      ['pass'],
      tier,
    );
  }
});

test('ClusterNetworkPolicy: an unsupported peer or protocol fails its rule closed and is reported; the policy loads', (t) => {
  const s = snapshotFromYaml(
    cnp(`  tier: Admin
  priority: 3
  subject: { namespaces: {} }
  ingress:
    - { name: from-nodes, action: Accept, from: [{ namespaces: {} }, { nodes: {} }] }
    - { name: empty-peer, action: Deny, from: [{}], protocols: [{ tcp: { destinationPort: { number: 22 } } }] }
    - { name: kept, action: Accept, from: [{ namespaces: {} }] }
  egress:
    - { name: dns, action: Deny, to: [{ domainNames: [example.com] }], protocols: [{ tcp: { destinationPort: { number: 443 } } }] }
    - { name: pass, action: Pass, to: [{ networks: [10.0.0.0/8] }, { fqdn: x }] }
    - { name: icmp, action: Deny, to: [{ networks: [10.0.0.0/8] }], protocols: [{ icmp: {} }] }
    - { name: no-proto, action: Accept, to: [{ networks: [10.0.0.0/8] }], protocols: [{}] }
`),
    'p.yaml',
  );
  const [p] = s.policies.filter((x) => x.tier !== 'system');
  t.truthy(p, 'the policy loads');
  t.deepEqual(
    p.rules.map((r) => [ruleName(r), r.action, r.peers, r.ports]),
    [
      // Accept rules with an unsupported part are gone (they match nothing); the others keep their index.
      ['ingress[1] empty-peer', 'deny', [{ kind: 'any' }], [{ protocol: 'TCP', port: 22 }]],
      ['ingress[2] kept', 'allow', [{ kind: 'pods', namespaceSelector: {} }], null],
      ['egress[0] dns', 'deny', [{ kind: 'any' }], [{ protocol: 'TCP', port: 443 }]],
      ['egress[1] pass', 'deny', [{ kind: 'any' }], null],
      ['egress[2] icmp', 'deny', [{ kind: 'cidr', cidr: '10.0.0.0/8', except: [] }], null],
    ],
  );
  t.deepEqual(
    s.errors.map((e) => [e.field, e.message]),
    [
      [
        'spec.ingress[0].from[1].nodes',
        'peer type "nodes" is not supported: the Accept rule fails closed and matches nothing',
      ],
      ['spec.ingress[1].from[0]', 'sets no peer type: the Deny rule fails closed and denies every peer on its ports'],
      [
        'spec.egress[0].to[0].domainNames',
        'peer type "domainNames" is not supported: the Deny rule fails closed and denies every peer on its ports',
      ],
      [
        'spec.egress[1].to[1].fqdn',
        'peer type "fqdn" is not supported: the Pass rule fails closed and denies every peer on every port',
      ],
      [
        'spec.egress[2].protocols[0].icmp',
        'protocol type "icmp" is not supported: the Deny rule fails closed and denies its peers on every port',
      ],
      ['spec.egress[3].protocols[0]', 'sets no protocol type: the Accept rule fails closed and matches nothing'],
    ],
  );
  for (const e of s.errors)
    t.like(e, { file: 'p.yaml', object: 'ClusterNetworkPolicy cnp', key: 'ClusterNetworkPolicy cnp' });
  t.is(s.errors[2].line, 13, 'the error names the line of the unsupported peer');
  t.deepEqual(
    s.origins?.get('ClusterNetworkPolicy cnp'),
    { file: 'p.yaml' },
    'loaded: this version is enforced, not a last valid one',
  );
});

test('ClusterNetworkPolicy: a rule that is invalid (not merely unsupported) still rejects the object', (t) => {
  const s = snapshotFromYaml(
    cnp(
      '  tier: Admin\n  priority: 1\n  subject: { namespaces: {} }\n  egress: [{ action: Deny, to: [{ domainNames: [a.io] }, { networks: [nope] }] }]\n',
    ),
  );
  t.deepEqual(
    s.errors.map((e) => e.field),
    ['spec.egress[0].to[1].networks[0]'],
    'only the rejection, not the fail-closed report',
  );
  t.is(s.policies.filter((x) => x.tier !== 'system').length, 0);
});

test('MultiNetworkPolicy: netpol semantics plus the networks of policy-for', (t) => {
  const mnp = (ann: string) => `apiVersion: k8s.cni.cncf.io/v1beta1
kind: MultiNetworkPolicy
metadata:
  name: m
  namespace: a
  ${ann}
spec:
  podSelector: {}
  ingress: [{ from: [{ podSelector: {} }] }]
`;
  const [p] = policies(mnp('annotations: { k8s.v1.cni.cncf.io/policy-for: "net1, other/net2" }'));
  t.is(p.tier, 'netpol');
  t.deepEqual(p.networks, ['a/net1', 'other/net2']);
  t.deepEqual(p.ref, { kind: 'MultiNetworkPolicy', namespace: 'a', name: 'm' });
  const none = snapshotFromYaml(mnp('labels: {}'));
  t.is(none.policies.filter((x) => x.tier === 'netpol').length, 0);
  t.regex(none.warnings[0], /MultiNetworkPolicy a\/m.*skipped: no k8s\.v1\.cni\.cncf\.io\/policy-for/);
  t.like(errors(mnp('annotations: { k8s.v1.cni.cncf.io/policy-for: "a/b/c" }'))[0], {
    field: 'metadata.annotations.k8s.v1.cni.cncf.io/policy-for',
  });
});

test('Antrea node policies: subject nodes, tier-ordered priority, Allow/Drop, ipBlock and nodeSelector peers', (t) => {
  const ps = policies(
    [
      antrea(
        `  tier: securityops
  priority: 5
  appliedTo: [{ nodeSelector: { matchLabels: { role: worker } } }]
  ingress:
    - name: drop-ssh
      action: Drop
      from: [{ ipBlock: { cidr: 192.168.0.0/16 } }]
      ports: [{ protocol: TCP, port: 22 }]
  egress:
    - action: Allow
      to: [{ nodeSelector: {} }]
      ports: [{ port: 30000, endPort: 32767 }]
`,
        'sec',
      ),
      antrea('  priority: 1.5\n  appliedTo: [{ nodeSelector: {} }]\n  ingress: [{ action: Allow }]\n', 'app'),
      antrea(
        '  tier: baseline\n  priority: 1\n  appliedTo: [{ nodeSelector: {} }]\n  ingress: [{ action: Drop }]\n',
        'base',
      ),
    ].join('---\n'),
  );
  t.deepEqual(
    ps.map((p) => [p.ref.name, p.tier]),
    [
      ['sec', 'admin'],
      ['app', 'admin'],
      ['base', 'baseline'],
    ],
  );
  const [sec, app] = ps;
  t.deepEqual(sec.subject, { kind: 'nodes', nodeSelector: { matchLabels: { role: 'worker' } } });
  t.is(sec.ref.kind, 'NodePolicy');
  t.is(sec.priority, antreaPriority('securityops', 5));
  t.true(sec.priority < app.priority, 'securityops before application');
  t.true(antreaPriority('application', 9999) < antreaPriority('baseline', 1));
  t.deepEqual(
    sec.rules.map((r) => [ruleName(r), r.action]),
    [
      ['ingress[0] drop-ssh', 'deny'],
      ['egress[0]', 'allow'],
    ],
  );
  t.deepEqual(sec.rules[0].peers, [{ kind: 'cidr', cidr: '192.168.0.0/16', except: [] }]);
  t.deepEqual(sec.rules[1].peers, [{ kind: 'nodes', nodeSelector: {} }]);
  t.deepEqual(sec.rules[1].ports, [{ protocol: 'TCP', port: 30000, endPort: 32767 }]);
  t.deepEqual(app.rules[0].peers, [{ kind: 'any' }]);
  t.is(app.rules[0].ports, null);
});

test('Antrea: pod policies are skipped with a warning; unsupported node-policy fields are errors', (t) => {
  const s = snapshotFromYaml(
    antrea(
      '  priority: 1\n  appliedTo: [{ podSelector: {} }]\n  ingress: [{ action: Allow, from: [{ podSelector: {} }] }]\n',
    ),
  );
  t.deepEqual(s.errors, []);
  t.is(s.policies.filter((p) => p.tier !== 'system').length, 0);
  t.regex(s.warnings[0], /ClusterNetworkPolicy node-pol.*skipped: not a node policy/);
  t.like(
    errors(
      antrea(
        '  priority: 1\n  appliedTo: [{ nodeSelector: {} }]\n  ingress: [{ action: Allow, from: [{ podSelector: {} }] }]\n',
      ),
    )[0],
    {
      field: 'spec.ingress[0].from[0].podSelector',
    },
  );
  t.like(
    errors(
      antrea('  tier: baseline\n  priority: 1\n  appliedTo: [{ nodeSelector: {} }]\n  ingress: [{ action: Pass }]\n'),
    )[0],
    {
      field: 'spec.ingress[0].action',
      message: 'must be one of Allow, Drop, Reject, got "Pass"',
    },
  );
  t.like(
    errors(
      antrea(
        '  priority: 1\n  appliedTo: [{ nodeSelector: {} }]\n  ingress: [{ action: Allow, ports: [{ port: http }] }]\n',
      ),
    )[0],
    {
      field: 'spec.ingress[0].ports[0].port',
    },
  );
});

test('Antrea: Reject is enforced as Drop, with a warning', (t) => {
  const s = snapshotFromYaml(
    antrea(
      '  priority: 1\n  appliedTo: [{ nodeSelector: {} }]\n  ingress: [{ action: Reject, from: [{ ipBlock: { cidr: 10.0.0.0/8 } }] }]\n',
    ),
    'n.yaml',
  );
  t.deepEqual(s.errors, []);
  t.deepEqual(
    s.policies.filter((p) => p.tier !== 'system')[0].rules.map((r) => r.action),
    ['deny'],
  );
  t.deepEqual(s.warnings, [
    'ClusterNetworkPolicy node-pol (n.yaml:1): spec.ingress[0].action: Reject is enforced as Drop (no reject reply)',
  ]);
});

test('system policy: privileged rules from NetfenceConfig on every node', (t) => {
  const s = snapshotFromYaml(
    'apiVersion: netfence.io/v1alpha1\nkind: NetfenceConfig\nprivileged: { apiServers: ["10.0.0.100:6443", "[fd00::100]:443"], agentPorts: [9402, 9403] }\n',
  );
  const [sys] = s.policies;
  t.is(sys.tier, 'system');
  t.is(policyName(sys.ref), 'System privileged');
  t.deepEqual(sys.subject, { kind: 'nodes', nodeSelector: {} });
  t.deepEqual(sys.rules.map(ruleName), [
    'ingress[0] loopback',
    'ingress[1] kubelet',
    'ingress[2] agent',
    'egress[0] loopback',
    'egress[1] api-server',
    'egress[2] api-server',
  ]);
  t.deepEqual(sys.rules[1].ports, [{ protocol: 'TCP', port: 10250 }]);
  t.deepEqual(sys.rules[2].ports, [
    { protocol: 'TCP', port: 9402 },
    { protocol: 'TCP', port: 9403 },
  ]);
  t.deepEqual(sys.rules[5].peers, [{ kind: 'cidr', cidr: 'fd00::100/128', except: [] }]);
  t.deepEqual(sys.rules[5].ports, [{ protocol: 'TCP', port: 443 }]);
  const off = snapshotFromYaml(
    'apiVersion: netfence.io/v1alpha1\nkind: NetfenceConfig\nprivileged: { enabled: false }\n',
  );
  t.is(off.policies.length, 0);
});

test('policies come sorted by tier, priority, then name', (t) => {
  const ps = policies(
    [
      cnp('  tier: Baseline\n  priority: 1\n  subject: { namespaces: {} }\n', 'z-base'),
      np('  podSelector: {}\n', 'np-b'),
      cnp('  tier: Admin\n  priority: 5\n  subject: { namespaces: {} }\n', 'b-admin'),
      cnp('  tier: Admin\n  priority: 5\n  subject: { namespaces: {} }\n', 'a-admin'),
      cnp('  tier: Admin\n  priority: 1\n  subject: { namespaces: {} }\n', 'z-admin'),
      np('  podSelector: {}\n', 'np-a'),
    ].join('---\n'),
  );
  t.deepEqual(
    ps.map((p) => p.ref.name),
    ['z-admin', 'a-admin', 'b-admin', 'np-a', 'np-b', 'z-base'],
  );
  t.deepEqual([...ps].reverse().sort(comparePolicies), ps);
});
