import test from 'ava';
import { compile } from '../../src/compile';
import type { DiscoveredEndpoint } from '../../src/compile/endpoint';
import { hooksFor } from '../../src/compile/hooks';
import { IPPROTO, NF_MAX_RULES, NF_TABLE_MASK, NfAction, NfEpFlag, NfLocalKind, NfTier } from '../../src/wire/abi';
import { decodeEndpoint, encodeEndpoint } from '../../src/wire/endpoint';
import { decodeLocal } from '../../src/wire/local';
import { decodeCidrKey, decodePortKey, decodeRule, decodeRuleKey, encodeCidrKey } from '../../src/wire/tables';
import { bitmapIndices } from '../../src/compile/bitmap';
import { formatCidr } from '../../src/model/ip';
import { encodeU32, keyHex } from '../../src/wire/bytes';
import { ISOLATION_RULE } from '../../src/model/rules';
import { withSystemPolicies } from '../../src/model/snapshot';
import { cnp, namespace, netpol, node, pod, podsPeer, rule, snapshot } from '../helpers/snapshot-builders';
import { manyPolicyCidr } from '../helpers/many-policies';
import { evalTable } from '../helpers/map-eval';

const podEp = (pod: string, ifindex: number): DiscoveredEndpoint => ({
  ifname: `veth${ifindex}`,
  ifindex,
  kind: 'pod',
  pod,
});
const hostEp = (ifname: string, ifindex: number): DiscoveredEndpoint => ({ ifname, ifindex, kind: 'host' });

/** Namespace app and node n1 (192.168.0.1) with the pods and policies given. */
const appSnapshot = (parts: Pick<Parameters<typeof snapshot>[0], 'pods' | 'policies'>) =>
  snapshot({ namespaces: [namespace('app')], nodes: [node('n1', ['192.168.0.1'])], ...parts });

function replicas(n: number) {
  return Array.from({ length: n }, (_, i) => pod('app', `web-${i}`, [`10.0.0.${i + 1}`], { app: 'web' }));
}

test('endpoints with the same rule list share one table', (t) => {
  const s = appSnapshot({
    pods: [...replicas(20), pod('app', 'db', ['10.0.9.1'], { app: 'db' })],
    policies: [
      netpol('app', 'web', { app: 'web' }, [
        rule('ingress', 0, [podsPeer('app', { app: 'db' })], [{ protocol: 'TCP', port: 80 }]),
      ]),
    ],
  });
  const r = compile(s, 'n1', [...replicas(20).map((p, i) => podEp(`app/${p.name}`, 10 + i)), podEp('app/db', 99)]);
  t.deepEqual(r.errors, []);
  const web = r.endpoints.filter((e) => e.pod!.startsWith('app/web-'));
  t.is(new Set(web.map((e) => e.ingressTable)).size, 1);
  t.not(web[0].ingressTable, 0);
  t.is(web[0].egressTable, 0, 'not isolated for egress: no table');
  const db = r.endpoints.find((e) => e.pod === 'app/db')!;
  t.is(db.ingressTable, 0);
  // One table: allow, node-local, isolation.
  t.is(r.maps.nf_rules.size, 3);
  t.deepEqual(
    r.rules.map((x) => [x.policy, x.rule, x.action]),
    [
      ['NetworkPolicy app/web', 'ingress[0]', 'allow'],
      ['', 'node-local', 'allow'],
      ['', 'isolation', 'deny'],
    ],
  );
  const table = web[0].ingressTable;
  t.is(evalTable(r.maps, table, '10.0.9.1', IPPROTO.TCP, 80), 0);
  t.is(evalTable(r.maps, table, '10.0.9.1', IPPROTO.TCP, 81), 2);
  t.is(evalTable(r.maps, table, '192.168.0.1', IPPROTO.UDP, 53), 1);
  t.is(evalTable(r.maps, table, '10.0.0.3', IPPROTO.TCP, 80), 2);
});

test('compile is deterministic and independent of input order', (t) => {
  const pods = [...replicas(5), pod('app', 'db', ['10.0.9.1', 'fd00::9:1'], { app: 'db' })];
  const policies = [
    netpol('app', 'a', { app: 'web' }, [
      rule('ingress', 0, [podsPeer('app', { app: 'db' })], [{ protocol: 'TCP', port: 80 }]),
    ]),
    netpol('app', 'b', { app: 'db' }, [
      rule('egress', 0, [{ kind: 'cidr', cidr: '10.0.0.0/16', except: ['10.0.0.0/24'] }], null),
    ]),
    cnp('c', 'admin', 5, {}, [rule('ingress', 0, [{ kind: 'cidr', cidr: '172.16.0.0/12', except: [] }], null, 'deny')]),
  ];
  const eps = [...pods.map((p, i) => podEp(`app/${p.name}`, 10 + i))];
  const mk = (rev: boolean) =>
    appSnapshot({
      pods: rev ? [...pods].reverse() : pods,
      policies: rev ? [...policies].reverse() : policies,
    });
  const a = compile(mk(false), 'n1', eps);
  const b = compile(mk(true), 'n1', [...eps].reverse());
  for (const map of Object.keys(a.maps) as (keyof typeof a.maps)[]) {
    t.deepEqual(
      [...a.maps[map]].map(([k, v]) => [k, v.value.toString('hex')]).sort(),
      [...b.maps[map]].map(([k, v]) => [k, v.value.toString('hex')]).sort(),
      map,
    );
  }
  t.deepEqual(a.endpoints, b.endpoints);
  t.deepEqual(a.rules, b.rules);
});

test('a table over the rule limit is refused, naming the endpoint and the count: the endpoint gets its isolation table, never a truncated one', (t) => {
  const n = NF_MAX_RULES + 44;
  const rules = Array.from({ length: n }, (_, i) =>
    rule('ingress', i, [{ kind: 'cidr', cidr: `10.${i >> 8}.${i & 255}.0/24`, except: [] }], null, 'deny'),
  );
  const s = appSnapshot({
    pods: replicas(2),
    policies: [cnp('big', 'admin', 1, { app: 'web' }, rules)],
  });
  const r = compile(s, 'n1', [podEp('app/web-0', 10), podEp('app/web-1', 11)]);
  t.is(r.errors.length, 2);
  t.is(r.errors[0], `compile endpoint app/web-0 (veth10): ingress table needs ${n} rules, limit ${NF_MAX_RULES}`);
  t.is(r.endpoints.length, 2);
  const [web0] = r.endpoints;
  t.deepEqual(web0.refused, { directions: ['ingress'], error: r.errors[0] });
  t.is(web0.ingressTable, web0.isolationTables!.ingress, 'the refused direction points at the isolation table');
  t.is(web0.egressTable, 0);
  t.is(r.endpoints[1].ingressTable, web0.ingressTable, 'one isolation table for every isolated pod');
  const rules0 = r.rules.filter((x) => x.table === web0.ingressTable);
  t.deepEqual(
    rules0.map((x) => [x.action, x.rule]),
    [['deny', ISOLATION_RULE]],
    'deny all, never truncated',
  );
  t.is(r.maps.nf_rules.size, 1);
  t.deepEqual([...r.isolation.nf_rules.keys()], [...r.maps.nf_rules.keys()]);
});

test('a host interface isolation table keeps the privileged rules before its deny-all', (t) => {
  const base = appSnapshot({ pods: replicas(1), policies: [] });
  const config = {
    ...base.config,
    privileged: { ...base.config.privileged, enabled: true, apiServers: ['10.0.0.1:6443'] },
  };
  const policies = withSystemPolicies(
    [cnp('pods', 'admin', 1, { app: 'web' }, [rule('ingress', 0, [{ kind: 'any' }], null, 'deny')])],
    config,
  );
  const r = compile({ ...base, config, policies }, 'n1', [hostEp('eth0', 2), podEp('app/web-0', 10)]);
  const host = r.endpoints.find((e) => e.kind === 'host')!;
  const pod = r.endpoints.find((e) => e.kind === 'pod')!;
  const isolation = (table = 0) =>
    [...r.isolation.nf_rules.values()]
      .map(({ key, value }) => ({ ...decodeRuleKey(key), ...decodeRule(value) }))
      .filter((x) => x.table === table)
      .sort((a, b) => a.index - b.index)
      .map((x) => `${x.tier === NfTier.SYSTEM ? 'system' : 'netpol'} ${x.action === NfAction.DENY ? 'deny' : 'allow'}`);
  t.deepEqual(
    isolation(host.isolationTables!.ingress),
    ['system allow', 'system allow', 'system allow', 'netpol deny'],
    'loopback, kubelet, agent, then deny all',
  );
  t.deepEqual(
    isolation(host.isolationTables!.egress),
    ['system allow', 'system allow', 'netpol deny'],
    'loopback, api server, then deny all',
  );
  t.deepEqual(isolation(pod.isolationTables!.ingress), ['netpol deny']);
  t.is(pod.isolationTables!.egress, 0, 'no table, nothing to fall back from');
});

/** manyPoliciesYaml's policies as model objects, selecting app=web. */
function manyNetpols(n: number) {
  return Array.from({ length: n }, (_, i) =>
    netpol('app', `np${i}`, { app: 'web' }, [
      rule(
        'ingress',
        0,
        [{ kind: 'cidr', cidr: manyPolicyCidr(i), except: [] }],
        [{ protocol: 'TCP', port: 1000 + i }],
      ),
    ]),
  );
}

test('300 NetworkPolicies selecting one pod: one table of 302 rules in 2 chunks, each chunk keyed apart', (t) => {
  const s = appSnapshot({ pods: replicas(1), policies: manyNetpols(300) });
  const r = compile(s, 'n1', [podEp('app/web-0', 10)]);
  t.deepEqual(r.errors, []);
  const ep = r.endpoints[0];
  const value = decodeEndpoint(r.maps.nf_endpoints.get(keyHex(encodeU32(10)))!.value);
  t.like(value, { ingressTable: ep.ingressTable, ingressChunks: 2, egressTable: 0, egressChunks: 0 });
  t.true(ep.ingressTable > 0 && ep.ingressTable <= NF_TABLE_MASK, 'a 24-bit table id');
  t.is(r.maps.nf_rules.size, 302);
  // every bitmap entry of chunk c holds rules of chunk c only
  const chunkOf = (m: 'nf_ports' | 'nf_peer_cidr') =>
    [...r.maps[m].values()].map(({ key, value: v }) => {
      const k = m === 'nf_ports' ? decodePortKey(key) : decodeCidrKey(key);
      return { chunk: k.chunk, rules: bitmapIndices(v, k.chunk) };
    });
  for (const m of ['nf_ports', 'nf_peer_cidr'] as const) {
    const entries = chunkOf(m);
    t.deepEqual([...new Set(entries.map((e) => e.chunk))].sort(), [0, 1], `${m}: both chunks`);
    t.true(
      entries.every((e) => e.rules.every((i) => Math.floor(i / 256) === e.chunk)),
      `${m}: bits stay in their chunk`,
    );
  }
  // the 300 allows come first (in the compiler's policy order), then node-local (300) and isolation (301)
  const order = r.rules.map((x) => x.policy);
  const rule = (i: number) => order.indexOf(`NetworkPolicy app/np${i}`);
  for (const i of [0, 7, 255, 256, 299]) {
    t.is(
      evalTable(r.maps, ep.ingressTable, manyPolicyCidr(i).replace('0/24', '9'), IPPROTO.TCP, 1000 + i),
      rule(i),
      `np${i}: its peer on its port`,
    );
    t.is(
      evalTable(r.maps, ep.ingressTable, manyPolicyCidr(i).replace('0/24', '9'), IPPROTO.TCP, 999),
      301,
      `np${i}: another port is isolated`,
    );
  }
  t.is(evalTable(r.maps, ep.ingressTable, '192.168.0.1', IPPROTO.UDP, 53), 300, 'node-local, in chunk 1');
  t.is(
    evalTable(r.maps, ep.ingressTable, '172.16.0.1', IPPROTO.TCP, 1000),
    301,
    'isolation deny, the last rule of chunk 1',
  );
});

test('one ClusterNetworkPolicy of NF_MAX_RULES rules compiles (no cost quadratic in its rules) into a table of 64 chunks', (t) => {
  const rules = Array.from({ length: NF_MAX_RULES }, (_, i) =>
    rule(
      'ingress',
      i,
      [{ kind: 'cidr', cidr: manyPolicyCidr(i), except: [] }],
      [{ protocol: 'TCP', port: 1000 + (i % 50000) }],
      'deny',
    ),
  );
  const r = compile(
    appSnapshot({ pods: replicas(1), policies: [cnp('big', 'admin', 1, { app: 'web' }, rules)] }),
    'n1',
    [podEp('app/web-0', 10)],
  );
  t.deepEqual(r.errors, []);
  const ep = r.endpoints[0];
  t.like(decodeEndpoint(r.maps.nf_endpoints.get(keyHex(encodeU32(10)))!.value), { ingressChunks: 64 });
  t.is(r.maps.nf_rules.size, NF_MAX_RULES);
  const last = r.maps.nf_peer_cidr.get(keyHex(encodeCidrKey(ep.ingressTable, manyPolicyCidr(NF_MAX_RULES - 1), 63)));
  t.deepEqual(last && bitmapIndices(last.value, 63), [NF_MAX_RULES - 1], 'the last rule, in chunk 63');
});

test('port ranges decompose into aligned LPM prefixes', (t) => {
  const s = appSnapshot({
    pods: replicas(1),
    policies: [
      cnp('ranges', 'admin', 1, {}, [
        rule('ingress', 0, [{ kind: 'any' }], [{ protocol: 'TCP', port: 1000, endPort: 1999 }], 'deny'),
        rule('ingress', 1, [{ kind: 'any' }], [{ protocol: 'UDP' }, { protocol: 'TCP', port: 1500 }], 'deny'),
        rule('ingress', 2, [{ kind: 'any' }], null, 'pass'),
      ]),
    ],
  });
  const r = compile(s, 'n1', [podEp('app/web-0', 10)]);
  const table = r.endpoints[0].ingressTable;
  const entries = [...r.maps.nf_ports.values()].map(({ key, value }) => ({
    ...decodePortKey(key),
    rules: bitmapIndices(value),
  }));
  const text = entries
    .map((e) => (e.proto === undefined ? `*=${e.rules}` : `${e.proto}:${e.port}/${e.portBits}=${e.rules}`))
    .sort();
  // 1000-1999 = 1000/13 1008/12 1024/7 1536/8 1792/9 1920/10 1984/12; rule 2 (every
  // port) is in every prefix; 1500 sits inside 1024/7 so it carries rules 0 and 1.
  t.deepEqual(
    text,
    [
      '*=2',
      '17:0/0=1,2',
      '6:1000/13=0,2',
      '6:1008/12=0,2',
      '6:1024/7=0,2',
      '6:1500/16=0,1,2',
      '6:1536/8=0,2',
      '6:1792/9=0,2',
      '6:1920/10=0,2',
      '6:1984/12=0,2',
    ].sort(),
  );
  t.true(entries.every((e) => e.table === table));
  // Whatever the decomposition, the lookups must agree with the ranges.
  for (const port of [0, 999, 1000, 1007, 1008, 1499, 1500, 1501, 1999, 2000, 65535]) {
    const want = port >= 1000 && port <= 1999 ? 0 : undefined;
    t.is(evalTable(r.maps, table, '1.2.3.4', IPPROTO.TCP, port), port === 1500 ? 0 : want, `tcp ${port}`);
    t.is(evalTable(r.maps, table, '1.2.3.4', IPPROTO.UDP, port), 1, `udp ${port}`);
  }
  t.is(evalTable(r.maps, table, '1.2.3.4', IPPROTO.ICMP, 0), undefined, 'pass skips to the default');
});

test('ipBlock except: every cidr and except is a prefix; an except shadows only its own cidr', (t) => {
  const s = appSnapshot({
    pods: replicas(1),
    policies: [
      cnp('blocks', 'admin', 1, {}, [
        rule('egress', 0, [{ kind: 'cidr', cidr: '10.0.0.0/8', except: ['10.1.0.0/16', '10.2.0.0/16'] }], null, 'deny'),
        rule('egress', 1, [{ kind: 'cidr', cidr: '10.1.0.0/16', except: ['10.1.1.0/24'] }], null, 'allow'),
        rule(
          'egress',
          2,
          [{ kind: 'cidr', cidr: 'fd00::/8', except: ['fd00:1::/32'] }, { kind: 'any' }],
          [{ protocol: 'UDP', port: 53 }],
          'deny',
        ),
      ]),
    ],
  });
  const r = compile(s, 'n1', [podEp('app/web-0', 10)]);
  const table = r.endpoints[0].egressTable;
  const entries = [...r.maps.nf_peer_cidr.values()].map(
    ({ key, value }) => `${formatCidr(decodeCidrKey(key).cidr)}=${bitmapIndices(value)}`,
  );
  t.deepEqual(
    entries.sort(),
    [
      '10.0.0.0/8=0,2',
      '10.1.0.0/16=1,2',
      '10.1.1.0/24=2',
      '10.2.0.0/16=2',
      '::/0=2',
      'fd00::/8=2',
      'fd00:1::/32=2',
    ].sort(),
  );
  const cases: [string, number, number | undefined][] = [
    ['10.9.9.9', 80, 0],
    ['10.1.2.3', 80, 1],
    ['10.1.1.1', 80, undefined],
    ['10.2.0.1', 80, undefined],
    ['10.2.0.1', 53, 2],
    ['11.0.0.1', 80, undefined],
    ['fd00:1::1', 53, 2],
  ];
  for (const [ip, port, want] of cases) t.is(evalTable(r.maps, table, ip, IPPROTO.UDP, port), want, `${ip}:${port}`);
  t.is(decodeRule(r.maps.nf_rules.values().next().value!.value).action, NfAction.DENY);
});

test('an IPv6 block written inside ::ffff:0:0/96 stays IPv6: it matches no IPv4 peer, as in the reference', (t) => {
  const s = appSnapshot({
    pods: replicas(1),
    policies: [
      cnp('mapped', 'admin', 1, {}, [
        rule('egress', 0, [{ kind: 'cidr', cidr: '::ffff:0:0/96', except: [] }], null, 'deny'),
      ]),
    ],
  });
  const r = compile(s, 'n1', [podEp('app/web-0', 10)]);
  const table = r.endpoints[0].egressTable;
  const entries = [...r.maps.nf_peer_cidr.values()].map(
    ({ key, value }) => `${formatCidr(decodeCidrKey(key).cidr)}=${bitmapIndices(value)}`,
  );
  t.deepEqual(entries, ['0.0.0.0/0='], 'its own except removes every address it holds');
  t.is(evalTable(r.maps, table, '10.9.9.9', IPPROTO.TCP, 80), undefined);
});

test('egress named ports split into sub-rules per resolved port; ingress resolves on the own pod', (t) => {
  const http = (n: number) => [{ name: 'http', containerPort: n, protocol: 'TCP' as const }];
  const s = appSnapshot({
    pods: [
      pod('app', 'client', ['10.0.0.1'], { app: 'client' }, { ports: http(9000) }),
      pod('app', 'a', ['10.0.0.2'], { app: 'srv', v: '1' }, { ports: http(8080) }),
      pod('app', 'b', ['10.0.0.3'], { app: 'srv', v: '2' }, { ports: http(8081) }),
      pod('app', 'c', ['10.0.0.4'], { app: 'srv', v: '3' }),
    ],
    policies: [
      netpol('app', 'client-out', { app: 'client' }, [
        rule(
          'egress',
          0,
          [podsPeer('app', { app: 'srv' })],
          [
            { protocol: 'TCP', name: 'http' },
            { protocol: 'UDP', port: 53 },
          ],
        ),
      ]),
      netpol('app', 'client-in', { app: 'client' }, [
        rule('ingress', 0, [{ kind: 'any' }], [{ protocol: 'TCP', name: 'http' }]),
      ]),
    ],
  });
  const r = compile(s, 'n1', [podEp('app/client', 10)]);
  t.deepEqual(r.errors, []);
  const ep = r.endpoints[0];
  const egress = r.rules.filter((x) => x.table === ep.egressTable);
  t.deepEqual(
    egress.map((x) => x.rule),
    ['egress[0]', 'egress[0]', 'egress[0]', 'isolation'],
    'numeric + one sub-rule per port',
  );
  const tcp = (ip: string, port: number) => evalTable(r.maps, ep.egressTable, ip, IPPROTO.TCP, port);
  t.is(tcp('10.0.0.2', 8080), 1);
  t.is(tcp('10.0.0.2', 8081), 3);
  t.is(tcp('10.0.0.3', 8081), 2);
  t.is(tcp('10.0.0.4', 8080), 3);
  t.is(evalTable(r.maps, ep.egressTable, '10.0.0.4', IPPROTO.UDP, 53), 0);
  t.is(evalTable(r.maps, ep.ingressTable, '8.8.8.8', IPPROTO.TCP, 9000), 0);
  t.is(evalTable(r.maps, ep.ingressTable, '8.8.8.8', IPPROTO.TCP, 8080), 2);
});

test('endpoint flags: pod, host, the tunnel on pods when a redirect is configured, kept established flows on hosts', (t) => {
  const s = appSnapshot({ pods: replicas(1) });
  const eps: DiscoveredEndpoint[] = [podEp('app/web-0', 10), { ifname: 'eth0', ifindex: 2, kind: 'host' }];
  const flagsOf = (r: ReturnType<typeof compile>) =>
    [...r.maps.nf_endpoints.values()].map((e) => decodeEndpoint(e.value).flags).sort();
  t.deepEqual(flagsOf(compile(s, 'n1', eps)), [NfEpFlag.POD, NfEpFlag.HOST].sort());
  s.config.redirect = { mode: 'fwmark', mark: 1, table: 1, uplink: 'eth0', serviceCIDRs: ['10.96.0.0/12'] };
  const r = compile(s, 'n1', eps);
  const { SVC_CIDRS } = NfEpFlag; // the redirect's service CIDRs: every endpoint
  t.deepEqual(flagsOf(r), [NfEpFlag.POD | NfEpFlag.TUNNEL | SVC_CIDRS, NfEpFlag.HOST | SVC_CIDRS].sort());
  t.is(r.maps.nf_svc_cidrs.size, 1);
  // privileged established flows: host endpoints keep them across policy revisions
  s.config.privileged = { ...s.config.privileged, enabled: true, established: true };
  t.deepEqual(
    flagsOf(compile(s, 'n1', eps)),
    [NfEpFlag.POD | NfEpFlag.TUNNEL | SVC_CIDRS, NfEpFlag.HOST | NfEpFlag.KEEP_ESTABLISHED | SVC_CIDRS].sort(),
  );
  s.config.privileged.established = false;
  t.deepEqual(
    flagsOf(compile(s, 'n1', eps)),
    [NfEpFlag.POD | NfEpFlag.TUNNEL | SVC_CIDRS, NfEpFlag.HOST | SVC_CIDRS].sort(),
    'established not privileged',
  );
});

test('local delivery: pods on a veth whose peer was found, with their MACs in nf_local_addrs; off by config or under the tunnel', (t) => {
  const s = appSnapshot({ pods: replicas(2) });
  const veth = { podMac: '02:00:00:00:00:01', hostMac: '02:00:00:00:00:02' };
  const eps: DiscoveredEndpoint[] = [
    { ...podEp('app/web-0', 10), veth },
    podEp('app/web-1', 11),
    { ifname: 'eth0', ifindex: 2, kind: 'host' },
  ];
  const byIf = (r: ReturnType<typeof compile>) =>
    new Map([...r.maps.nf_endpoints.values()].map((e) => [e.key.readUInt32LE(0), decodeEndpoint(e.value).flags]));
  const locals = (r: ReturnType<typeof compile>) =>
    [...r.maps.nf_local_addrs.values()].map((e) => decodeLocal(e.value)).filter((l) => l.kind === NfLocalKind.POD);
  const r = compile(s, 'n1', eps);
  t.is(byIf(r).get(10), NfEpFlag.POD | NfEpFlag.LOCAL_DELIVERY);
  t.is(byIf(r).get(11), NfEpFlag.POD, 'peer not found (e.g. a VF representor): the stack delivers');
  t.is(byIf(r).get(2), NfEpFlag.HOST);
  t.deepEqual(
    locals(r).sort((a, b) => a.ifindex - b.ifindex),
    [
      { ifindex: 10, kind: NfLocalKind.POD, ...veth },
      { ifindex: 11, kind: NfLocalKind.POD },
    ],
  );
  s.config.localDelivery = false;
  t.is(byIf(compile(s, 'n1', eps)).get(10), NfEpFlag.POD, 'switched off');
  t.false(
    locals(compile(s, 'n1', eps)).some((l) => l.podMac),
    'no MACs then',
  );
  s.config.localDelivery = true;
  s.config.redirect = { mode: 'direct', mark: 1, table: 1, uplink: 'eth0', serviceCIDRs: [] };
  t.is(
    byIf(compile(s, 'n1', eps)).get(10),
    NfEpFlag.POD | NfEpFlag.TUNNEL,
    'the tunnel takes same-node traffic out the uplink instead',
  );
});

test('bridge ports (L2 layouts): neither local delivery nor the tunnel, even with veth MACs and a redirect', (t) => {
  const s = appSnapshot({ pods: replicas(2) });
  const veth = { podMac: '02:00:00:00:00:01', hostMac: '02:00:00:00:00:02' };
  const eps: DiscoveredEndpoint[] = [
    { ...podEp('app/web-0', 10), veth, bridge: 'cni0' },
    { ...podEp('app/web-1', 11), veth },
  ];
  const byIf = (r: ReturnType<typeof compile>) =>
    new Map([...r.maps.nf_endpoints.values()].map((e) => [e.key.readUInt32LE(0), decodeEndpoint(e.value).flags]));
  const r = compile(s, 'n1', eps);
  t.is(byIf(r).get(10), NfEpFlag.POD, 'bridged: no routed hop to take');
  t.is(byIf(r).get(11), NfEpFlag.POD | NfEpFlag.LOCAL_DELIVERY, 'routed');
  t.false(
    [...r.maps.nf_local_addrs.values()].map((e) => decodeLocal(e.value)).some((l) => l.ifindex === 10 && l.podMac),
    'no MACs for a bridge port',
  );
  s.config.redirect = { mode: 'fwmark', mark: 1, table: 1, uplink: 'eth0', serviceCIDRs: [] };
  const tunnel = byIf(compile(s, 'n1', eps));
  t.is(tunnel.get(10), NfEpFlag.POD, 'bridged: no tunnel');
  t.is(tunnel.get(11), NfEpFlag.POD | NfEpFlag.TUNNEL);
});

test('a compiled endpoint carries its entry and what it means: the hooks it needs and the tunnel', (t) => {
  const s = appSnapshot({
    pods: [...replicas(1), pod('app', 'db', ['10.0.9.1'], { app: 'db' })],
    policies: [netpol('app', 'in', { app: 'web' }, [rule('ingress', 0, [{ kind: 'any' }], null)])],
  });
  const eps: DiscoveredEndpoint[] = [podEp('app/web-0', 10), podEp('app/db', 11), hostEp('eth0', 2)];
  const check = (r: ReturnType<typeof compile>) => {
    for (const ep of r.endpoints) {
      const entry = r.maps.nf_endpoints.get(keyHex(encodeU32(ep.ifindex)))!.value;
      t.true(encodeEndpoint(ep).equals(entry), `${ep.ifname}: the entry it was compiled to`);
      t.deepEqual(ep.hooks, hooksFor(decodeEndpoint(entry)), `${ep.ifname}: hooks`);
      t.is(ep.tunnel, (decodeEndpoint(entry).flags & NfEpFlag.TUNNEL) !== 0, `${ep.ifname}: tunnel`);
    }
    return Object.fromEntries(r.endpoints.map((ep) => [ep.ifname, { hooks: ep.hooks, tunnel: ep.tunnel }]));
  };
  t.deepEqual(check(compile(s, 'n1', eps)), {
    veth10: { hooks: ['ingress', 'egress'], tunnel: false },
    veth11: { hooks: [], tunnel: false },
    eth0: { hooks: ['ingress', 'egress'], tunnel: false },
  });
  s.config.redirect = { mode: 'direct', mark: 1, table: 1, uplink: 'eth0', serviceCIDRs: [] };
  t.deepEqual(check(compile(s, 'n1', eps)), {
    veth10: { hooks: ['ingress', 'egress'], tunnel: true },
    veth11: { hooks: ['ingress', 'egress'], tunnel: true },
    eth0: { hooks: ['ingress', 'egress'], tunnel: false },
  });
});

test('endpoint flags: SVC_CIDRS on every endpoint while the node has service CIDRs', (t) => {
  const s = appSnapshot({ pods: replicas(1) });
  const eps: DiscoveredEndpoint[] = [podEp('app/web-0', 10), { ifname: 'eth0', ifindex: 2, kind: 'host' }];
  const svcOf = () =>
    [...compile(s, 'n1', eps).maps.nf_endpoints.values()].map(
      (e) => decodeEndpoint(e.value).flags & NfEpFlag.SVC_CIDRS,
    );
  t.deepEqual(svcOf(), [0, 0]);
  s.config.serviceCIDRs = ['10.96.0.0/12'];
  t.deepEqual(svcOf(), [NfEpFlag.SVC_CIDRS, NfEpFlag.SVC_CIDRS]);
});

test('endpoint flags: SRC_CHECK on every endpoint while a local pod has an egress table', (t) => {
  const eps: DiscoveredEndpoint[] = [
    podEp('app/web-0', 10),
    podEp('app/web-1', 11),
    { ifname: 'eth0', ifindex: 2, kind: 'host' },
  ];
  const flagsOf = (policies: Parameters<typeof appSnapshot>[0]['policies']) =>
    [...compile(appSnapshot({ pods: replicas(2), policies }), 'n1', eps).maps.nf_endpoints.values()].map(
      (e) => decodeEndpoint(e.value).flags & NfEpFlag.SRC_CHECK,
    );
  t.deepEqual(flagsOf([]), [0, 0, 0], 'no policy');
  t.deepEqual(
    flagsOf([netpol('app', 'in', { app: 'web' }, [rule('ingress', 0, [{ kind: 'any' }], null)])]),
    [0, 0, 0],
    'ingress tables only',
  );
  const egress = netpol('app', 'out', { app: 'web' }, [
    rule('egress', 0, [{ kind: 'cidr', cidr: '10.0.0.0/16', except: [] }], null),
  ]);
  t.deepEqual(
    flagsOf([egress]),
    [NfEpFlag.SRC_CHECK, NfEpFlag.SRC_CHECK, NfEpFlag.SRC_CHECK],
    'egress: every endpoint',
  );
});
