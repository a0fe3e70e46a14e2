import test from 'ava';
import { compile } from '../../src/compile';
import type { CompileResult } from '../../src/compile/output';
import type { PolicyMapName } from '../../src/wire/maps';
import type { DiscoveredEndpoint } from '../../src/compile/endpoint';
import { NF_TABLE_DENY, NF_TABLE_MASK } from '../../src/wire/abi';
import { encodeAddr } from '../../src/wire/addr';
import { decodeU32, encodeU32, keyHex } from '../../src/wire/bytes';
import { assignIds, type IdKind } from '../../src/compile/hash';
import { type PartInterner, type PodPart, podPart } from '../../src/compile/identities';
import { namespace, netpol, node, pod, podsPeer, rule, snapshot } from '../helpers/snapshot-builders';

/** Changed keys per map between two compile results: added, removed, value changed. */
function diff(a: CompileResult, b: CompileResult): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const map of Object.keys(a.maps) as PolicyMapName[]) {
    const changes: string[] = [];
    for (const [k, v] of b.maps[map]) {
      const old = a.maps[map].get(k);
      if (!old) changes.push(`+${k}`);
      else if (!old.value.equals(v.value)) changes.push(`~${k}`);
    }
    for (const k of a.maps[map].keys()) if (!b.maps[map].has(k)) changes.push(`-${k}`);
    if (changes.length) out[map] = changes;
  }
  return out;
}

const base = () =>
  snapshot({
    namespaces: [namespace('app'), namespace('db')],
    nodes: [node('n1', ['192.168.0.1']), node('n2', ['192.168.0.2'])],
    pods: [
      pod('app', 'web-1', ['10.0.0.1'], { app: 'web' }),
      pod('app', 'web-2', ['10.0.0.2'], { app: 'web' }, { nodeName: 'n2' }),
      pod('db', 'pg-1', ['10.0.1.1'], { app: 'pg' }),
    ],
    policies: [
      netpol('db', 'pg-from-web', { app: 'pg' }, [
        rule(
          'ingress',
          0,
          [{ kind: 'pods', namespaceSelector: {}, podSelector: { matchLabels: { app: 'web' } } }],
          [{ protocol: 'TCP', port: 5432 }],
        ),
      ]),
      netpol('app', 'web-egress', { app: 'web' }, [rule('egress', 0, [podsPeer('app', { app: 'web' })], null)]),
    ],
  });

const endpoints: DiscoveredEndpoint[] = [
  { ifname: 'veth-web1', ifindex: 11, kind: 'pod', pod: 'app/web-1' },
  { ifname: 'veth-pg1', ifindex: 12, kind: 'pod', pod: 'db/pg-1' },
];

test('the addresses of one identity share one nf_ident_exact value (not a Buffer per pod)', (t) => {
  const exact = compile(base(), 'n1', endpoints).maps.nf_ident_exact;
  const value = (ip: string) => exact.get(keyHex(encodeAddr(ip)))!.value;
  t.is(value('10.0.0.1'), value('10.0.0.2'), 'web-1 and web-2: one identity, one Buffer');
  t.not(decodeU32(value('10.0.0.1')), decodeU32(value('10.0.1.1')));
});

test('a remote pod with an existing label set costs exactly one nf_ident_exact entry', (t) => {
  const s1 = base();
  const r1 = compile(s1, 'n1', endpoints);
  const s2 = base();
  s2.pods.push(pod('app', 'web-3', ['10.0.0.3'], { app: 'web' }, { nodeName: 'n2' }));
  const r2 = compile(s2, 'n1', endpoints);
  t.deepEqual(r1.errors, []);
  t.deepEqual(diff(r1, r2), { nf_ident_exact: [`+${keyHex(encodeAddr('10.0.0.3'))}`] });
  const id = r2.maps.nf_ident_exact.get(keyHex(encodeAddr('10.0.0.3')))!.value;
  t.true(id.equals(r2.maps.nf_ident_exact.get(keyHex(encodeAddr('10.0.0.1')))!.value));
});

test('a local pod with an existing label set adds its identity, local address and endpoint only', (t) => {
  const r1 = compile(base(), 'n1', endpoints);
  const s2 = base();
  s2.pods.push(pod('app', 'web-4', ['10.0.0.4'], { app: 'web' }));
  const r2 = compile(s2, 'n1', [...endpoints, { ifname: 'veth-web4', ifindex: 13, kind: 'pod', pod: 'app/web-4' }]);
  const addr = keyHex(encodeAddr('10.0.0.4'));
  const ifindex = keyHex(encodeU32(13));
  t.deepEqual(diff(r1, r2), {
    nf_ident_exact: [`+${addr}`],
    nf_local_addrs: [`+${addr}`],
    nf_endpoints: [`+${ifindex}`],
  });
  const web1 = r2.endpoints.find((e) => e.pod === 'app/web-1')!;
  const web4 = r2.endpoints.find((e) => e.pod === 'app/web-4')!;
  t.is(web4.egressTable, web1.egressTable, 'same label set, same table');
  t.not(web4.id, web1.id);
});

test('a new label set selected by a rule gets a new identity and changes the tables that select it', (t) => {
  const r1 = compile(base(), 'n1', endpoints);
  const s2 = base();
  s2.pods.push(pod('app', 'web-canary', ['10.0.0.9'], { app: 'web', track: 'canary' }, { nodeName: 'n2' }));
  const r2 = compile(s2, 'n1', endpoints);
  const ids1 = new Set(r1.identities.keys());
  const added = [...r2.identities.keys()].filter((i) => !ids1.has(i));
  t.is(added.length, 1);
  t.regex(r2.identities.get(added[0])!, /^app\/app=web,track=canary/);
  // Every identity that existed keeps its id.
  for (const i of ids1) t.is(r2.identities.get(i), r1.identities.get(i));
  const pg1 = r1.endpoints.find((e) => e.pod === 'db/pg-1')!;
  const pg2 = r2.endpoints.find((e) => e.pod === 'db/pg-1')!;
  t.not(pg2.ingressTable, pg1.ingressTable, 'pg ingress now selects one more identity');
  t.not(pg2.revision, pg1.revision);
  t.is(pg2.egressTable, pg1.egressTable);
});

test('hostNetwork pods are their node: same identity as the node address', (t) => {
  const s = base();
  s.pods.push(pod('kube-system', 'proxy', ['192.168.0.2'], { k: 'p' }, { hostNetwork: true, nodeName: 'n2' }));
  s.pods.push(pod('kube-system', 'agent', ['192.168.0.77'], { k: 'a' }, { hostNetwork: true, nodeName: 'n2' }));
  const r = compile(s, 'n1', endpoints);
  t.deepEqual(r.errors, []);
  const idOf = (ip: string) => decodeU32(r.maps.nf_ident_exact.get(keyHex(encodeAddr(ip)))!.value);
  t.is(idOf('192.168.0.77'), idOf('192.168.0.2'));
  t.regex(r.identities.get(idOf('192.168.0.2'))!, /^node\//);
});

test('table ids keep to 24 bits (the top byte keys chunks): probing wraps there and skips 0 and NF_TABLE_DENY; other ids use 32', (t) => {
  const hashes: Record<string, number> = { a: 0xff000000, b: 0x01ffffff, c: 0x00ffffff, d: 0x12345678 };
  const hash = (_: IdKind, key: string) => hashes[key];
  // a masks to 0 (reserved): 1; b and c both mask to 0xffffff, the deny-all table's id
  // (reserved): b wraps past 0 and the taken 1 to 2, c on to 3
  t.deepEqual(Object.fromEntries(assignIds(Object.keys(hashes), 'table', hash)), { a: 1, b: 2, c: 3, d: 0x345678 });
  t.is(NF_TABLE_DENY, NF_TABLE_MASK);
  // every table id of a crowded top end: none is the reserved one
  const top = (_: IdKind, key: string) => NF_TABLE_MASK - Number(key);
  const ids = [...assignIds(['0', '1', '2', '3'], 'table', top).values()];
  t.false(ids.includes(NF_TABLE_DENY));
  t.deepEqual(
    ids.sort((x, y) => x - y),
    [1, NF_TABLE_MASK - 3, NF_TABLE_MASK - 2, NF_TABLE_MASK - 1],
  );
  t.deepEqual(Object.fromEntries(assignIds(Object.keys(hashes), 'identity', hash)), {
    a: 0xff000000,
    b: 0x01ffffff,
    c: 0x00ffffff,
    d: 0x12345678,
  });
});

test('ids are those of probing every collision in (hash, key) order, for crowded hashes at both ends', (t) => {
  /** The definition: each key in (hash, key) order takes the first id from its hash on,
   *  wrapping within the mask, that is not 0, reserved or taken. */
  function reference(keys: string[], kind: IdKind, hash: (k: IdKind, key: string) => number): Map<string, number> {
    const mask = kind === 'table' ? NF_TABLE_MASK : 0xffffffff;
    const order = keys.map((key) => ({ key, h: (hash(kind, key) & mask) >>> 0 }));
    order.sort((a, b) => a.h - b.h || (a.key < b.key ? -1 : 1));
    const used = new Set<number>();
    const out = new Map<string, number>();
    for (const { key, h } of order) {
      let id = h;
      while (id === 0 || used.has(id) || (kind === 'table' && id === NF_TABLE_DENY)) id = ((id + 1) & mask) >>> 0;
      used.add(id);
      out.set(key, id);
    }
    return out;
  }
  let seed = 1;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) / 0x1000000;
  for (let round = 0; round < 300; round++) {
    const kind: IdKind = round % 2 ? 'table' : 'identity';
    const mask = kind === 'table' ? NF_TABLE_MASK : 0xffffffff;
    const keys = Array.from({ length: 1 + Math.floor(rand() * 40) }, (_, i) => `k${i}`);
    const hashes = new Map(
      keys.map((k) => {
        const where = rand();
        const near = Math.floor(rand() * 8);
        return [k, where < 0.3 ? near : where < 0.6 ? mask - near : Math.floor(rand() * 0x100000000)];
      }),
    );
    const hash = (_: IdKind, key: string) => hashes.get(key)!;
    t.deepEqual([...assignIds(keys, kind, hash)].sort(), [...reference(keys, kind, hash)].sort(), `round ${round}`);
  }
});

test('pods of equal labels and ports share one part; labels given in another order make an equal one', (t) => {
  const parts = new Map<string, PodPart>();
  const intern: PartInterner = (raw, make) => {
    let p = parts.get(raw);
    if (!p) parts.set(raw, (p = make()));
    return p;
  };
  const ports = [{ name: 'http', containerPort: 8080, protocol: 'TCP' as const }];
  const a = podPart(pod('app', 'a', ['10.0.0.1'], { app: 'web', tier: 'front' }, { ports }), intern);
  const b = podPart(pod('db', 'b', ['10.0.0.2'], { app: 'web', tier: 'front' }, { ports }), intern);
  const c = podPart(pod('app', 'c', ['10.0.0.3'], { tier: 'front', app: 'web' }, { ports }), intern);
  const d = podPart(pod('app', 'd', ['10.0.0.4'], { app: 'web', tier: 'front' }), intern);
  t.is(a, b);
  t.not(a, c);
  t.deepEqual(c, a);
  t.is(a.description, 'app=web,tier=front ports:TCP/http=8080');
  t.not(d.text, a.text);
  t.is(d.description, 'app=web,tier=front');
  t.is(parts.size, 3);
});
