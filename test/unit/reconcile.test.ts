import test from 'ava';
import { POLICY_MAPS, type PolicyMapName } from '../../src/wire/maps';
import { NF_TABLE_DENY, NfEpFlag } from '../../src/wire/abi';
import { encodeAddr } from '../../src/wire/addr';
import { encodeU32 } from '../../src/wire/bytes';
import { decodeEndpoint } from '../../src/wire/endpoint';
import { decodeCidrKey, decodePortKey } from '../../src/wire/tables';
import { reconcile } from '../../src/reconcile/apply';
import { MapOpError } from '../../src/reconcile/mapio';
import { MAP_WRITE_ORDER } from '../../src/reconcile/order';
import { planDiff } from '../../src/reconcile/plan';
import { FakeAttacher, RecordingIO, build, rulesOf, type EpSpec } from './_reconcile';

test('the write order covers every policy map once, endpoints last', (t) => {
  t.deepEqual([...MAP_WRITE_ORDER].sort(), [...POLICY_MAPS].sort());
  t.is(MAP_WRITE_ORDER[MAP_WRITE_ORDER.length - 1], 'nf_endpoints');
});

test('first apply writes everything, a second apply of the same state changes nothing', (t) => {
  const io = new RecordingIO();
  const att = new FakeAttacher();
  const s = build({ tables: { 1: 2, 2: 3 }, endpoints: [{ ifindex: 5, ingress: 1, egress: 2 }] });
  const r1 = reconcile(io, att, s.maps, s.endpoints);
  t.true(r1.ok);
  t.deepEqual(r1.programmed, ['veth5']);
  t.is(rulesOf(io, 1), 2);
  t.is(rulesOf(io, 2), 3);
  t.true(att.hooks.has('veth5/ingress') && att.hooks.has('veth5/egress'));
  io.ops = [];
  const r2 = reconcile(io, att, s.maps, s.endpoints);
  t.true(r2.ok);
  t.deepEqual(io.ops, []);
  t.deepEqual(r2.updates, {});
  t.deepEqual(r2.deletes, {});
  t.deepEqual(planDiff(s.maps, Object.fromEntries([...io.maps]) as never).diffs, []);
});

test('a new endpoint: tables first, then programs, then the endpoint entry', (t) => {
  const io = new RecordingIO();
  const att = new FakeAttacher();
  const events: string[] = [];
  const origAttach = att.attach.bind(att);
  att.attach = (ep, d) => {
    events.push(`attach ${d}`);
    origAttach(ep, d);
  };
  const origUpdate = io.update.bind(io);
  io.update = (m, k, v) => {
    events.push(m);
    origUpdate(m, k, v);
  };
  const s = build({ tables: { 1: 1 }, endpoints: [{ ifindex: 5, ingress: 1, egress: 0 }] });
  reconcile(io, att, s.maps, s.endpoints);
  const firstAttach = events.indexOf('attach ingress');
  t.true(events.indexOf('nf_rules') < firstAttach);
  t.true(events.indexOf('nf_ports') < firstAttach);
  t.is(events.at(-1), 'nf_endpoints');
  t.true(events.indexOf('attach egress') < events.indexOf('nf_endpoints'));
});

test("an endpoint's counter slot is zeroed just before an entry takes it, never while the same endpoint keeps it", (t) => {
  const io = new RecordingIO();
  const att = new FakeAttacher();
  const events: string[] = [];
  const origUpdate = io.update.bind(io);
  io.update = (m, k, v) => {
    if (m === 'nf_endpoints') events.push(`write ${decodeEndpoint(v).statsSlot}`);
    origUpdate(m, k, v);
  };
  const origZero = io.zeroEndpointCounters.bind(io);
  io.zeroEndpointCounters = (slot) => {
    events.push(`zero ${slot}`);
    origZero(slot);
  };
  const spec = (slot5: number, flags6 = NfEpFlag.POD): Parameters<typeof build>[0] => ({
    tables: { 1: 1 },
    endpoints: [
      { ifindex: 5, ingress: 1, egress: 0, slot: slot5 },
      { ifindex: 6, ingress: 0, egress: 0, flags: flags6 },
      { ifindex: 7, ingress: 0, egress: 0, slot: 0 },
    ],
  });
  let s = build(spec(5));
  reconcile(io, att, s.maps, s.endpoints);
  t.deepEqual(events, ['zero 5', 'write 5', 'zero 6', 'write 6', 'write 0'], 'new endpoints; slot 0 is not counted');
  events.length = 0;
  s = build(spec(5, NfEpFlag.POD | NfEpFlag.LOCAL_DELIVERY));
  reconcile(io, att, s.maps, s.endpoints);
  t.deepEqual(events, ['write 6'], 'a changed entry of the same endpoint on the same slot keeps its counters');
  events.length = 0;
  s = build(spec(9, NfEpFlag.POD | NfEpFlag.LOCAL_DELIVERY));
  reconcile(io, att, s.maps, s.endpoints);
  t.deepEqual(events, ['zero 9', 'write 9'], 'a slot the endpoint moves to starts from zero');
});

test('a counter slot that cannot be zeroed holds no endpoint back: written uncounted, taken by the next pass', (t) => {
  const io = new RecordingIO();
  const att = new FakeAttacher();
  const s = build({ tables: { 1: 1 }, endpoints: [{ ifindex: 5, ingress: 1, egress: 0 }] });
  let broken = true;
  const origZero = io.zeroEndpointCounters.bind(io);
  io.zeroEndpointCounters = (slot) => {
    if (broken) throw new MapOpError('update nf_ep_counters: injected', 'EIO');
    origZero(slot);
  };
  const r1 = reconcile(io, att, s.maps, s.endpoints);
  t.deepEqual(r1.programmed, ['veth5'], 'enforced');
  t.deepEqual(r1.failed, []);
  t.false(r1.exact);
  t.regex(r1.error ?? '', /^zero counter slot 5: update nf_ep_counters: injected/);
  const entry = () => decodeEndpoint(io.lookup('nf_endpoints', encodeU32(5))!);
  t.like(entry(), { ingressTable: 1, statsSlot: 0 }, 'its table, no slot');
  broken = false;
  const r2 = reconcile(io, att, s.maps, s.endpoints);
  t.true(r2.exact);
  t.deepEqual(io.zeroedSlots, [5]);
  t.is(entry().statsSlot, 5, 'the next pass zeroed the slot and took it');
});

test('switching an endpoint to another table: minimal writes, endpoint switched last, old table deleted after', (t) => {
  const io = new RecordingIO();
  const att = new FakeAttacher();
  const a = build({
    tables: { 1: 2 },
    endpoints: [
      { ifindex: 5, ingress: 1, egress: 0 },
      { ifindex: 6, ingress: 0, egress: 0 },
    ],
  });
  reconcile(io, att, a.maps, a.endpoints);
  io.ops = [];
  const b = build({
    tables: { 2: 1 },
    endpoints: [
      { ifindex: 5, ingress: 2, egress: 0, revision: 2 },
      { ifindex: 6, ingress: 0, egress: 0 },
    ],
  });
  const r = reconcile(io, att, b.maps, b.endpoints);
  t.true(r.ok);
  t.deepEqual(r.updates, { nf_rules: 1, nf_ports: 1, nf_peer_cidr: 1, nf_endpoints: 1 });
  t.deepEqual(r.deletes, { nf_rules: 2, nf_ports: 1, nf_peer_cidr: 1 });
  const lastUpdate = io.ops.map((o) => o.op).lastIndexOf('update');
  const firstDelete = io.ops.findIndex((o) => o.op === 'delete');
  t.is(io.ops[lastUpdate].map, 'nf_endpoints');
  t.true(lastUpdate < firstDelete);
  // deletes run in reverse write order
  const delMaps = [...new Set(io.ops.filter((o) => o.op === 'delete').map((o) => o.map))];
  t.deepEqual(delMaps, ['nf_peer_cidr', 'nf_ports', 'nf_rules']);
  t.is(rulesOf(io, 1), 0);
  t.is(rulesOf(io, 2), 1);
  t.deepEqual(
    att.log.filter((l) => l.startsWith('detach')),
    [],
  );
});

test('a multi-chunk table: its chunk keys belong to its base table, kept while an endpoint uses it, deleted with it', (t) => {
  const io = new RecordingIO();
  const att = new FakeAttacher();
  const chunkKeys = () =>
    [
      ...[...(io.maps.get('nf_ports')?.values() ?? [])].map((e) => ({ m: 'nf_ports', ...decodePortKey(e.key) })),
      ...[...(io.maps.get('nf_peer_cidr')?.values() ?? [])].map((e) => ({
        m: 'nf_peer_cidr',
        ...decodeCidrKey(e.key),
      })),
    ]
      .filter((k) => k.table === 1)
      .map((k) => `${k.m}/${k.chunk}`)
      .sort();
  // table 1: 300 rules = chunks 0 and 1
  const a = build({
    tables: { 1: 300 },
    endpoints: [
      { ifindex: 5, ingress: 1, egress: 0 },
      { ifindex: 6, ingress: 1, egress: 0 },
    ],
  });
  t.true(reconcile(io, att, a.maps, a.endpoints).ok);
  t.deepEqual(chunkKeys(), ['nf_peer_cidr/0', 'nf_peer_cidr/1', 'nf_ports/0', 'nf_ports/1']);
  t.is(rulesOf(io, 1), 300);
  t.like(decodeEndpoint(io.lookup('nf_endpoints', encodeU32(5))!), {
    ingressTable: 1,
    ingressChunks: 2,
    egressTable: 0,
    egressChunks: 0,
  });

  // both move to table 2; veth6's switch fails, so it keeps table 1: no chunk of it goes
  const b = build({
    tables: { 2: 1 },
    endpoints: [
      { ifindex: 5, ingress: 2, egress: 0, revision: 2 },
      { ifindex: 6, ingress: 2, egress: 0, revision: 2 },
    ],
  });
  io.failUpdate = (m, k) => m === 'nf_endpoints' && k.readUInt32LE(0) === 6;
  const r = reconcile(io, att, b.maps, b.endpoints);
  t.deepEqual(
    r.failed.map((f) => f.ifname),
    ['veth6'],
  );
  t.deepEqual(r.deletes, {});
  t.deepEqual(chunkKeys(), ['nf_peer_cidr/0', 'nf_peer_cidr/1', 'nf_ports/0', 'nf_ports/1']);
  t.is(rulesOf(io, 1), 300);

  // once veth6 switches, every chunk of table 1 goes
  io.failUpdate = undefined;
  const done = reconcile(io, att, b.maps, b.endpoints);
  t.true(done.exact);
  t.deepEqual(chunkKeys(), []);
  t.is(rulesOf(io, 1), 0);
  t.deepEqual(done.deletes, { nf_rules: 300, nf_ports: 2, nf_peer_cidr: 2 });
});

test('a failed attach rolls back that endpoint only; a shared table stays', (t) => {
  const io = new RecordingIO();
  const att = new FakeAttacher();
  att.failAttach.add('veth7/egress');
  const s = build({
    tables: { 1: 1, 3: 2 },
    endpoints: [
      { ifindex: 5, ingress: 1, egress: 0 },
      { ifindex: 7, ingress: 1, egress: 3 },
    ],
  });
  const r = reconcile(io, att, s.maps, s.endpoints);
  t.true(r.ok);
  t.deepEqual(r.programmed, ['veth5']);
  t.is(r.failed.length, 1);
  t.is(r.failed[0].ifname, 'veth7');
  t.regex(r.failed[0].error, /program endpoint veth7: attach veth7 egress: injected/);
  t.false(att.hooks.has('veth7/ingress'), 'ingress hook detached again');
  t.true(att.log.includes('detach veth7/ingress'));
  t.is(rulesOf(io, 1), 1, 'table 1 is used by veth5 and stays');
  t.is(rulesOf(io, 3), 0, 'table 3 only veth7 used: removed');
  t.is(io.lookup('nf_endpoints', encodeU32(7)), null);
  t.not(io.lookup('nf_endpoints', encodeU32(5)), null);
  // next run retries and succeeds
  att.failAttach.clear();
  const r2 = reconcile(io, att, s.maps, s.endpoints);
  t.deepEqual(r2.programmed, ['veth7']);
  t.is(rulesOf(io, 3), 2);
});

test('an endpoint that fails first does not take its table from a later one', (t) => {
  const io = new RecordingIO();
  const att = new FakeAttacher();
  att.failAttach.add('veth5/ingress');
  const s = build({
    tables: { 1: 2 },
    endpoints: [
      { ifindex: 5, ingress: 1, egress: 0 },
      { ifindex: 6, ingress: 1, egress: 0 },
    ],
  });
  const r = reconcile(io, att, s.maps, s.endpoints);
  t.deepEqual(r.programmed, ['veth6']);
  t.deepEqual(
    r.failed.map((f) => f.ifname),
    ['veth5'],
  );
  t.is(rulesOf(io, 1), 2);
});

test('map full in the shared phase: error names the map, previous state untouched', (t) => {
  const io = new RecordingIO({ nf_ident_exact: 2 });
  const att = new FakeAttacher();
  const a = build({
    tables: { 1: 1 },
    endpoints: [
      { ifindex: 5, ingress: 1, egress: 0 },
      { ifindex: 6, ingress: 1, egress: 0 },
    ],
  });
  t.true(reconcile(io, att, a.maps, a.endpoints).ok);
  const before = io.snapshot();
  // table 1 gains a rule (shared: enforced endpoints use it) and a third pod identity overflows
  const b = build({
    tables: { 1: 2, 4: 1 },
    endpoints: [
      { ifindex: 5, ingress: 1, egress: 0 },
      { ifindex: 6, ingress: 4, egress: 0 },
      { ifindex: 8, ingress: 1, egress: 0 },
    ],
  });
  const r = reconcile(io, att, b.maps, b.endpoints);
  t.false(r.ok);
  t.is(r.fullMap, 'nf_ident_exact');
  t.regex(r.error ?? '', /update nf_ident_exact: map full \(E2BIG\)/);
  t.deepEqual(io.snapshot(), before);
  t.false(att.hooks.has('veth8/ingress'));
});

test('map full while programming a new endpoint (no isolation table given): it is enforced deny-all, the map named', (t) => {
  const io = new RecordingIO({ nf_rules: 3 });
  const att = new FakeAttacher();
  const a = build({ tables: { 1: 2 }, endpoints: [{ ifindex: 5, ingress: 1, egress: 0 }] });
  reconcile(io, att, a.maps, a.endpoints);
  const before = io.snapshot();
  const b = build({
    tables: { 1: 2, 9: 4 },
    endpoints: [
      { ifindex: 5, ingress: 1, egress: 0 },
      { ifindex: 6, ingress: 9, egress: 0 },
    ],
  });
  const r = reconcile(io, att, b.maps, b.endpoints);
  t.true(r.ok);
  t.is(r.fullMap, 'nf_rules');
  t.regex(r.failed[0].error, /update nf_rules: map full.*no isolation table\): denies everything/);
  t.deepEqual(
    r.failed.map((f) => f.fallback),
    [{ ingress: 'isolated' }],
  );
  t.true(att.hooks.has('veth6/ingress'));
  t.is(decodeEndpoint(io.lookup('nf_endpoints', encodeU32(6))!).ingressTable, NF_TABLE_DENY);
  // nf_ident_exact of veth6 (shared) and its entry are written; the tables are as before
  const after = io.snapshot();
  for (const m of ['nf_rules', 'nf_ports', 'nf_peer_cidr']) t.deepEqual(after[m], before[m], m);
});

test('an injected write failure on an endpoint entry rolls back its tables and programs', (t) => {
  const io = new RecordingIO();
  const att = new FakeAttacher();
  io.failUpdate = (m, k) => m === 'nf_endpoints' && k.readUInt32LE(0) === 6;
  const s = build({
    tables: { 1: 1, 2: 1 },
    endpoints: [
      { ifindex: 5, ingress: 1, egress: 0 },
      { ifindex: 6, ingress: 2, egress: 0 },
    ],
  });
  const r = reconcile(io, att, s.maps, s.endpoints);
  t.deepEqual(
    r.failed.map((f) => f.ifname),
    ['veth6'],
  );
  t.regex(r.failed[0].error, /update nf_endpoints: write failed \(EIO\)/);
  t.false(att.hooks.has('veth6/ingress') || att.hooks.has('veth6/egress'));
  t.is(rulesOf(io, 2), 0);
  t.is(rulesOf(io, 1), 1);
});

test('a removed endpoint: entry deleted, programs detached, its table removed', (t) => {
  const io = new RecordingIO();
  const att = new FakeAttacher();
  const a = build({
    tables: { 1: 1, 2: 1 },
    endpoints: [
      { ifindex: 5, ingress: 1, egress: 0 },
      { ifindex: 6, ingress: 2, egress: 0 },
    ],
  });
  reconcile(io, att, a.maps, a.endpoints);
  const b = build({ tables: { 1: 1 }, endpoints: [{ ifindex: 5, ingress: 1, egress: 0 }] });
  const r = reconcile(io, att, b.maps, b.endpoints);
  t.deepEqual(r.detached, ['veth6']);
  t.false(att.hooks.has('veth6/ingress'));
  t.is(io.lookup('nf_endpoints', encodeU32(6)), null);
  t.is(rulesOf(io, 2), 0);
  t.is(io.lookup('nf_ident_exact', encodeAddr('10.0.0.6')), null);
});

test('a pinned entry without programs (restart after a detach) is re-attached', (t) => {
  const io = new RecordingIO();
  const att = new FakeAttacher();
  const s = build({ tables: { 1: 1 }, endpoints: [{ ifindex: 5, ingress: 1, egress: 0 }] });
  reconcile(io, att, s.maps, s.endpoints);
  att.hooks.clear();
  io.ops = [];
  const r = reconcile(io, att, s.maps, s.endpoints);
  t.deepEqual(r.programmed, ['veth5']);
  t.true(att.hooks.has('veth5/egress'));
  t.deepEqual(
    io.ops.filter((o) => o.op === 'delete'),
    [],
  );
});

test('batch ops are used for maps that support them', (t) => {
  const io = new RecordingIO({}, new Set<PolicyMapName>(['nf_rules', 'nf_ident_exact']));
  const att = new FakeAttacher();
  const s = build({
    tables: { 1: 3 },
    endpoints: [
      { ifindex: 5, ingress: 1, egress: 0 },
      { ifindex: 6, ingress: 1, egress: 0 },
    ],
  });
  reconcile(io, att, s.maps, s.endpoints);
  t.true(io.batches.includes('nf_rules'));
  t.true(io.batches.includes('nf_ident_exact'));
  t.false(io.batches.includes('nf_ports'));
  t.is(rulesOf(io, 1), 3);
});

test('hooks only where the program can act: none without a table, both with one, tc egress alone for a deferred source check, both on a host interface', (t) => {
  const io = new RecordingIO();
  const att = new FakeAttacher();
  const hooks = (ifindex: number): string[] =>
    ['ingress', 'egress'].filter((d) => att.hooks.has(`veth${ifindex}/${d}`));
  const state = (v5: Partial<EpSpec>) =>
    build({
      tables: { 1: 1 },
      endpoints: [
        { ifindex: 5, ingress: 0, egress: 0, ...v5 },
        { ifindex: 6, ingress: 1, egress: 0 },
        { ifindex: 7, ingress: 0, egress: 0, flags: NfEpFlag.POD | NfEpFlag.SRC_CHECK },
        { ifindex: 8, ingress: 0, egress: 0, flags: NfEpFlag.HOST },
      ],
    });
  const first = state({});
  t.deepEqual(
    reconcile(io, att, first.maps, first.endpoints).programmed,
    ['veth5', 'veth6', 'veth7', 'veth8'],
    'every endpoint has its entry',
  );
  t.deepEqual([hooks(5), hooks(6), hooks(7), hooks(8)], [[], ['ingress', 'egress'], ['egress'], ['ingress', 'egress']]);

  // veth5 gains a table: its programs are attached before its entry points at the table
  att.log = [];
  const events: string[] = [];
  const origUpdate = io.update.bind(io);
  io.update = (m, k, v) => {
    events.push(`${m} ${att.log.length}`);
    origUpdate(m, k, v);
  };
  const gained = state({ ingress: 1, revision: 2 });
  const r = reconcile(io, att, gained.maps, gained.endpoints);
  t.deepEqual(r.programmed, ['veth5']);
  t.deepEqual(att.log, ['attach veth5/ingress', 'attach veth5/egress']);
  t.deepEqual(events, ['nf_endpoints 2'], 'the shared table was in place; the entry after both attaches');

  // and loses it: the entry first (the program then passes everything), then the hooks go
  att.log = [];
  events.length = 0;
  const lost = state({ revision: 3 });
  const r2 = reconcile(io, att, lost.maps, lost.endpoints);
  t.true(r2.exact);
  t.deepEqual(events, ['nf_endpoints 0']);
  t.deepEqual(att.log, ['detach veth5/ingress', 'detach veth5/egress']);
  t.deepEqual(r2.detached, ['veth5/ingress', 'veth5/egress']);
  t.deepEqual(hooks(5), []);
  t.deepEqual(reconcile(io, att, lost.maps, lost.endpoints).updates, {}, 'settled: nothing to do');
});
