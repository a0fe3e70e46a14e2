// The lab plan is pure: check names, addresses, routes and kube-proxy rules from a
// hand-made Snapshot without touching the kernel.
import test from 'ava';
import { labName, labPorts, planLab, podHostIf, vlanBridge, type Op } from '../../src/lab/plan';
import { matrixPairs, parsePort, resolveEndpoint } from '../../src/lab/probe';
import { expected, parsePattern } from '../e2e/scenario';
import { labSnapshot } from '../e2e/lab-fixture';

const plan = planLab(labSnapshot(), { id: '/tmp/some/state' });
const has = (pred: (argv: string) => boolean): Op[] => plan.ops.filter((o) => pred(o.argv.join(' ')));

test('names carry the prefix and the state-dir hash, interface names fit IFNAMSIZ', (t) => {
  t.is(plan.name, labName('/tmp/some/state'));
  t.regex(plan.name, /^nf-[0-9a-f]{8}$/);
  t.not(labName('/tmp/other'), plan.name);
  t.is(planLab(labSnapshot(), { id: '/tmp/some/state', prefix: 'zz-' }).name.slice(0, 3), 'zz-');
  for (const ns of [plan.fabricNetns, ...plan.nodes.map((n) => n.netns), ...plan.pods.map((p) => p.netns)])
    t.true(ns.startsWith(`${plan.name}-`), ns);
  const ifnames = [
    ...plan.nodes.map((n) => n.fabricIf),
    ...plan.pods.flatMap((p) => [p.hostIf ?? 'eth0', ...p.secondary.map((s) => s.hostIf)]),
  ];
  for (const n of ifnames) t.true(n.length <= 15, n);
  t.is(new Set(ifnames).size, ifnames.length);
  t.is(plan.pods.find((p) => p.key === 'x/a')!.hostIf, podHostIf('x/a'));
});

test('every netns is created once and recorded before anything runs in it', (t) => {
  const created = plan.ops.filter((o) => o.netns).map((o) => o.netns!);
  t.is(new Set(created).size, created.length);
  t.deepEqual(
    new Set(created),
    new Set([
      plan.fabricNetns,
      ...plan.nodes.map((n) => n.netns),
      ...plan.pods.filter((p) => !p.hostNetwork).map((p) => p.netns),
    ]),
  );
  for (const ns of created) {
    const first = plan.ops.findIndex((o) => o.argv.includes(ns));
    t.deepEqual(plan.ops[first].argv, ['ip', 'netns', 'add', ns]);
  }
  t.false(
    plan.ops.some((o) => o.argv.some((a) => a.includes(';') || a.includes('|'))),
    'plain argv, no shell syntax',
  );
});

test('hostNetwork pods live in their node netns with the node addresses', (t) => {
  const h = plan.pods.find((p) => p.key === 'y/h')!;
  const n2 = plan.nodes.find((n) => n.name === 'n2')!;
  t.true(h.hostNetwork);
  t.is(h.netns, n2.netns);
  t.deepEqual(h.ips, n2.addresses);
  t.is(h.hostIf, undefined);
});

test('pods get /32 and /128 routes on their node and through the fabric', (t) => {
  const a = plan.pods.find((p) => p.key === 'x/a')!;
  const n1 = plan.nodes.find((n) => n.name === 'n1')!;
  t.is(has((s) => s === `ip -n ${n1.netns} route add 10.244.1.10/32 dev ${a.hostIf} scope link`).length, 1);
  t.is(has((s) => s === `ip -n ${n1.netns} route add fd00:244:1::10/128 dev ${a.hostIf} scope link`).length, 1);
  t.is(
    has((s) => s === `ip -n ${plan.fabricNetns} route add 10.244.1.10/32 via 192.168.50.11 dev ${n1.fabricIf} onlink`)
      .length,
    1,
  );
  t.is(has((s) => s.startsWith(`ip -n ${a.netns} route add default via 169.254.1.1`)).length, 1);
  t.is(has((s) => s.includes(`net.ipv4.conf.${a.hostIf}.proxy_arp=1`)).length, 1);
  // the secondary network: its own veth, its address routed on the node and in the fabric
  const sec = a.secondary[0];
  t.is(sec.network, 'x/sec');
  t.is(has((s) => s === `ip -n ${n1.netns} route add 10.10.0.10/32 dev ${sec.hostIf} scope link`).length, 1);
  t.is(has((s) => s === `ip -n ${a.netns} route add 10.10.0.20/32 via 169.254.1.1 dev net1 onlink`).length, 1);
});

test('a VLAN network is a bridge per node joined in the fabric: representors are its ports, pods talk directly', (t) => {
  const snap = labSnapshot();
  snap.networkAttachmentDefinitions[0].vlan = 100;
  const p = planLab(snap, { id: '/tmp/some/state' });
  const cmds = p.ops.map((o) => o.argv.join(' '));
  const [a, c] = ['x/a', 'y/c'].map((k) => p.pods.find((x) => x.key === k)!);
  const [n1, n2] = p.nodes;
  const br = vlanBridge('x/sec');
  t.is(a.secondary[0].bridge, br);
  for (const ns of [p.fabricNetns, n1.netns, n2.netns])
    t.true(cmds.includes(`ip -n ${ns} link add ${br} type bridge mcast_snooping 0`), ns);
  const uplinks = cmds.filter((c) => c.startsWith(`ip -n ${p.fabricNetns} link set nu`) && c.endsWith(`master ${br}`));
  t.is(uplinks.length, 2, 'one uplink per node with pods on the network');
  t.true(cmds.includes(`ip -n ${n1.netns} link set ${a.secondary[0].hostIf} master ${br}`));
  t.false(
    cmds.some((c) => c.includes(`${a.secondary[0].hostIf}.proxy_arp`)),
    'no proxy ARP on a bridge port',
  );
  t.true(
    cmds.includes(`ip -n ${n1.netns} route add 10.10.0.10/32 dev ${a.secondary[0].hostIf} scope link`),
    'the route discovery reads stays',
  );
  t.false(
    cmds.some((c) => c.startsWith(`ip -n ${p.fabricNetns} route add 10.10.0.`)),
    'nothing routed in the fabric',
  );
  t.true(cmds.includes(`ip -n ${a.netns} route add 10.10.0.20/32 dev net1 scope link`));
  t.true(cmds.includes(`ip -n ${c.netns} route add 10.10.0.10/32 dev net1 scope link`));
  for (const n of [br, ...uplinks.map((u) => u.split(' ')[5])]) t.true(n.length <= 15, n);
});

test('services become kube-proxy style DNAT in every node, named target ports resolved', (t) => {
  for (const node of plan.nodes) {
    const dnat = has(
      (s) => s.startsWith(`ip netns exec ${node.netns} iptables -w -t nat -A NF-SVC-`) && s.includes('DNAT'),
    );
    t.is(dnat.length, 1);
    t.true(dnat[0].argv.join(' ').endsWith('--to-destination 10.244.1.11:80'));
    for (const hook of ['PREROUTING', 'OUTPUT']) {
      t.is(
        has(
          (s) =>
            s.includes(`iptables -w -t nat -A ${hook} -d 10.96.0.10/32 -p tcp --dport 8080`) && s.includes(node.netns),
        ).length,
        1,
      );
    }
  }
});

test('several backends share the traffic with statistic random', (t) => {
  const snap = labSnapshot();
  snap.services[0].selector = {};
  snap.services[0].ports[0].targetPort = 80;
  snap.pods = snap.pods.filter((p) => p.namespace === 'x');
  const p = planLab(snap, { id: 'x' });
  const rules = p.ops
    .filter((o) => o.argv.includes('DNAT') && o.argv.includes(p.nodes[0].netns))
    .map((o) => o.argv.join(' '));
  t.is(rules.length, 2);
  t.true(rules[0].includes('--probability 0.50000'));
  t.false(rules[1].includes('statistic'));
});

test('fabric counts hairpins per node and serves the API-server emulation', (t) => {
  t.deepEqual(plan.apiServers, [{ ip: '192.168.50.100', port: 6443 }]);
  t.is(has((s) => s === `ip -n ${plan.fabricNetns} addr add 192.168.50.100/32 dev lo`).length, 1);
  for (const n of plan.nodes) t.is(has((s) => s.includes(`--comment hairpin:${n.name}`)).length, 2);
  t.deepEqual(plan.servers.find((s) => s.label === 'fabric')?.ports, [{ port: 6443, protocol: 'TCP' }]);
});

test('servers listen on the union of container ports, SCTP left out', (t) => {
  const snap = labSnapshot();
  snap.pods[0].ports.push({ containerPort: 82, protocol: 'SCTP' });
  t.deepEqual(labPorts(snap), [
    { port: 80, protocol: 'TCP' },
    { port: 81, protocol: 'UDP' },
  ]);
});

test('bad input names the object and field', (t) => {
  const snap = labSnapshot();
  snap.pods[1].ips = [];
  t.throws(() => planLab(snap, { id: 'x' }), { message: 'plan pod x/b: status.podIPs is empty' });
  const snap2 = labSnapshot();
  snap2.pods[0].nodeName = 'nope';
  t.throws(() => planLab(snap2, { id: 'x' }), { message: /plan pod x\/a: spec.nodeName "nope"/ });
});

test('matrix pairs: every ordered pair, per port and per common family', (t) => {
  const pairs = matrixPairs(plan, ['80/TCP']);
  // 4 pods, all dual-stack: 12 ordered pairs x 2 families
  t.is(pairs.length, 24);
  t.deepEqual(pairs[0], { from: 'x/a', to: 'x/b', port: '80/TCP', family: 4 });
  const sec = matrixPairs(plan, ['80/TCP'], 'x/sec');
  t.deepEqual(
    sec.map((p) => `${p.from}>${p.to}`),
    ['x/a>y/c', 'y/c>x/a'],
  );
  t.deepEqual(resolveEndpoint(plan, 'svc:x/web').ips, ['10.96.0.10']);
  t.throws(() => resolveEndpoint(plan, 'q/q'), { message: /probe endpoint q\/q/ });
  t.throws(() => parsePort('80/FOO'), { message: /parse port "80\/FOO"/ });
});

test('scenario expectations: globs, first match, port and family qualifiers', (t) => {
  const table: [string, 'allow' | 'deny'][] = [
    ['*->x/a v6', 'deny'],
    ['x/*->y/a 81/UDP', 'allow'],
    ['x/*->y/a', 'deny'],
    ['*->*', 'allow'],
  ];
  t.is(expected(table, { from: 'x/b', to: 'y/a', port: '80/TCP' }), 'deny');
  t.is(expected(table, { from: 'x/b', to: 'y/a', port: '81/UDP' }), 'allow');
  t.is(expected(table, { from: 'z/b', to: 'x/a', port: '80/TCP', family: 6 }), 'deny');
  t.is(expected(table, { from: 'z/b', to: 'x/a', port: '80/TCP', family: 4 }), 'allow');
  t.is(expected(table, { from: 'xx/b', to: 'y/a', port: '80/TCP' }), 'allow');
  t.throws(() => parsePattern('x/a to y/b'), { message: /parse expectation "x\/a to y\/b"/ });
  t.throws(() => expected([['x/*->*', 'deny']], { from: 'y/a', to: 'x/a', port: '80/TCP' }), {
    message: /no key matches y\/a->x\/a/,
  });
});
