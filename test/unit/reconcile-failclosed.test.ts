// Fail closed past capacity: a direction whose table cannot be enforced (refused by the
// compiler, or its entries do not fit a map) keeps the endpoint's last enforced table, or
// is isolated; a table that does not fit never blocks another endpoint's change, and
// leaves nothing half-written behind.
import test from 'ava';
import type { PolicyMapName } from '../../src/wire/maps';
import { endpointRevision } from '../../src/compile/hash';
import { NF_TABLE_DENY } from '../../src/wire/abi';
import { encodeU32 } from '../../src/wire/bytes';
import { decodeEndpoint } from '../../src/wire/endpoint';
import { reconcile } from '../../src/reconcile/apply';
import { Reconciler } from '../../src/reconcile/reconciler';
import { FakeAttacher, RecordingIO, build, rulesOf, type Spec } from './_reconcile';

const ISO = 99;
const entryOf = (io: RecordingIO, ifindex: number) => {
  const v = io.lookup('nf_endpoints', encodeU32(ifindex));
  return v && decodeEndpoint(v);
};
const sizes = (io: RecordingIO): Record<string, number> =>
  Object.fromEntries([...io.maps].map(([m, c]: [PolicyMapName, Map<string, unknown>]) => [m, c.size]));

function apply(io: RecordingIO, att: FakeAttacher, spec: Spec) {
  const s = build({ isolation: ISO, ...spec });
  return reconcile(io, att, s.maps, s.endpoints, { isolation: s.isolation });
}

test('a replacement table that does not fit: that endpoint keeps its last table, the others apply, nothing half-written stays', (t) => {
  const io = new RecordingIO({ nf_rules: 8 });
  const att = new FakeAttacher();
  const first = apply(io, att, {
    tables: { 1: 3, 2: 1 },
    endpoints: [
      { ifindex: 5, ingress: 1, egress: 0 },
      { ifindex: 6, ingress: 2, egress: 0 },
    ],
  });
  t.true(first.exact);
  // veth5's new table 3 needs 5 rules next to the 3 of table 1 it replaces (and table 2's and 4's): 3+1+2+5 > 8.
  const next: Spec = {
    tables: { 3: 5, 4: 2 },
    endpoints: [
      { ifindex: 5, ingress: 3, egress: 0, revision: 2 },
      { ifindex: 6, ingress: 4, egress: 0, revision: 2 },
    ],
  };
  const r = apply(io, att, next);
  t.true(r.ok, 'one table that does not fit never fails the pass');
  t.is(r.fullMap, 'nf_rules');
  t.is(entryOf(io, 6)?.ingressTable, 4, 'veth6 moved to its new table');
  t.is(entryOf(io, 5)?.ingressTable, 1, 'veth5 keeps its last enforced table');
  t.is(rulesOf(io, 1), 3, 'and that table stays');
  t.is(rulesOf(io, 3), 0, 'the half-written new table is rolled back');
  t.is(rulesOf(io, 2), 0, 'the table nothing uses any more is deleted');
  t.deepEqual(
    r.failed.map((f) => [f.ifname, f.fallback]),
    [['veth5', { ingress: 'kept' }]],
  );
  t.regex(
    r.failed[0].error,
    /^endpoint veth5 \(ns\/p5\) ingress: write table 0x00000003: update nf_rules: map full \(E2BIG\).*keeps its last enforced table 0x00000001 \(a new table is written before the old one goes: both must fit\)$/,
  );
  t.false(r.exact);

  // Retried at every pass without growing anything; a restarted reconciler does the same.
  const before = sizes(io);
  for (const rec of [new Reconciler(io, att), new Reconciler(io, att)]) {
    const s = build({ isolation: ISO, ...next });
    const again = rec.apply(s.maps, s.endpoints, s.isolation);
    t.true(again.ok && again.read);
    t.deepEqual(
      again.failed.map((f) => f.ifname),
      ['veth5'],
    );
    t.deepEqual(sizes(io), before);
  }

  // Once there is room, it converges: veth6 leaves, its table goes after this pass's
  // writes, so the pass after it has room for table 3 next to table 1.
  const alone: Spec = { tables: { 3: 5 }, endpoints: [{ ifindex: 5, ingress: 3, egress: 0, revision: 2 }] };
  t.deepEqual(
    apply(io, att, alone).failed.map((f) => f.ifname),
    ['veth5'],
  );
  t.is(rulesOf(io, 4), 0);
  const done = apply(io, att, alone);
  t.deepEqual(done.failed, []);
  t.true(done.exact);
  t.is(entryOf(io, 5)?.ingressTable, 3);
  t.is(rulesOf(io, 1), 0);
});

test('a new endpoint whose table does not fit is isolated in that direction; its other direction applies', (t) => {
  const io = new RecordingIO({ nf_rules: 6 });
  const att = new FakeAttacher();
  apply(io, att, { tables: { 1: 2 }, endpoints: [{ ifindex: 5, ingress: 1, egress: 0 }] });
  const r = apply(io, att, {
    tables: { 1: 2, 2: 1, 3: 9 },
    endpoints: [
      { ifindex: 5, ingress: 1, egress: 0 },
      { ifindex: 6, ingress: 3, egress: 2 },
    ],
  });
  t.true(r.ok);
  t.deepEqual(r.programmed, ['veth6']);
  t.deepEqual(
    r.failed.map((f) => [f.ifname, f.fallback]),
    [['veth6', { ingress: 'isolated' }]],
  );
  t.regex(
    r.failed[0].error,
    /ingress: write table 0x00000003: update nf_rules: map full.*; isolated \(denies all but the privileged rules\)/,
  );
  const ep = entryOf(io, 6)!;
  t.deepEqual([ep.ingressTable, ep.egressTable], [ISO, 2]);
  t.not(ep.revision, 1, 'a revision of the tables it really has');
  t.true(att.hooks.has('veth6/ingress') && att.hooks.has('veth6/egress'));
  t.is(rulesOf(io, ISO), 1, 'the isolation table is written');
  t.is(rulesOf(io, 3), 0);
});

test('refused by the compiler: an enforced endpoint keeps its last table, a new one (or one without a table there) is isolated', (t) => {
  const io = new RecordingIO();
  const att = new FakeAttacher();
  // Table 1 spans two chunks: a kept entry must keep walking both.
  apply(io, att, {
    tables: { 1: 300 },
    endpoints: [
      { ifindex: 5, ingress: 1, egress: 0 },
      { ifindex: 7, ingress: 0, egress: 1 },
    ],
  });
  const before = entryOf(io, 5);
  t.is(before?.ingressChunks, 2);
  // Every endpoint's ingress is over the limit: the compiler points it at the isolation table.
  const refused: Spec = {
    tables: { 1: 300 },
    endpoints: [
      { ifindex: 5, ingress: ISO, egress: 0, refused: ['ingress'], revision: 3 },
      { ifindex: 6, ingress: ISO, egress: 0, refused: ['ingress'], revision: 3 },
      { ifindex: 7, ingress: ISO, egress: 1, refused: ['ingress'], revision: 3 },
    ],
  };
  const r = apply(io, att, refused);
  t.true(r.ok);
  t.deepEqual(
    r.failed.map((f) => [f.ifname, f.fallback]),
    [
      ['veth5', { ingress: 'kept' }],
      ['veth6', { ingress: 'isolated' }],
      ['veth7', { ingress: 'isolated' }],
    ],
  );
  t.regex(
    r.failed[0].error,
    /^endpoint veth5 \(ns\/p5\) ingress: ingress refused: injected; keeps its last enforced table/,
  );
  t.deepEqual(entryOf(io, 5), before, 'veth5: its entry untouched');
  t.is(rulesOf(io, 1), 300, 'its last table stays');
  t.is(entryOf(io, 6)?.ingressChunks, 1, 'the isolation table is one chunk');
  t.deepEqual([entryOf(io, 7)?.ingressChunks, entryOf(io, 7)?.egressChunks], [1, 2]);
  t.is(entryOf(io, 6)?.ingressTable, ISO);
  t.deepEqual(
    [entryOf(io, 7)?.ingressTable, entryOf(io, 7)?.egressTable],
    [ISO, 1],
    'an open direction is never kept open',
  );
  t.true(att.hooks.has('veth6/ingress') && att.hooks.has('veth6/egress'));
  // Steady: the same state again changes nothing.
  io.ops = [];
  t.deepEqual(
    apply(io, att, refused).failed.map((f) => f.fallback),
    [{ ingress: 'kept' }, { ingress: 'isolated' }, { ingress: 'isolated' }],
    'an isolated endpoint stays reported as isolated',
  );
  t.deepEqual(io.ops, []);
});

test('the isolation table does not fit either: a new endpoint gets NF_TABLE_DENY (no map entry), hooks attached, reported isolated', (t) => {
  const io = new RecordingIO({ nf_peer_cidr: 1 });
  const att = new FakeAttacher();
  apply(io, att, { tables: { 1: 1 }, endpoints: [{ ifindex: 5, ingress: 1, egress: 0 }] });
  const spec: Spec = {
    tables: { 1: 1, 2: 1 },
    endpoints: [
      { ifindex: 5, ingress: 1, egress: 0 },
      { ifindex: 6, ingress: 2, egress: 0 },
    ],
  };
  const r = apply(io, att, spec);
  t.true(r.ok);
  t.deepEqual(r.programmed, ['veth6']);
  t.deepEqual(
    r.failed.map((f) => [f.ifname, f.fallback]),
    [['veth6', { ingress: 'isolated' }]],
  );
  t.regex(
    r.failed[0].error,
    /^endpoint veth6 \(ns\/p6\) ingress: write table 0x00000002: update nf_peer_cidr: map full.*; its isolation table did not fit either \(write table 0x00000063: update nf_peer_cidr: map full.*\): denies everything, privileged rules included$/,
  );
  const ep = entryOf(io, 6)!;
  t.deepEqual([ep.ingressTable, ep.ingressChunks, ep.egressTable], [NF_TABLE_DENY, 1, 0]);
  t.is(ep.revision, endpointRevision(NF_TABLE_DENY, 0), 'a revision of the tables it really has');
  t.true(att.hooks.has('veth6/ingress') && att.hooks.has('veth6/egress'));
  t.is(rulesOf(io, 2) + rulesOf(io, ISO), 0, 'nothing half-written');

  // Steady: it stays there, reported, without growing anything.
  const before = io.snapshot();
  t.deepEqual(
    apply(io, att, spec).failed.map((f) => [f.ifname, f.fallback]),
    [['veth6', { ingress: 'isolated' }]],
  );
  t.deepEqual(io.snapshot(), before);

  // A last resort is never kept as a "last enforced table": once veth5's table is gone,
  // veth6 gets its own table.
  const alone: Spec = { tables: { 2: 1 }, endpoints: [{ ifindex: 6, ingress: 2, egress: 0 }] };
  t.deepEqual(
    apply(io, att, alone).failed.map((f) => f.fallback),
    [{ ingress: 'isolated' }],
    "veth5's table goes after this pass's writes",
  );
  const done = apply(io, att, alone);
  t.deepEqual(done.failed, []);
  t.is(entryOf(io, 6)?.ingressTable, 2);
});

test('headed for NF_TABLE_DENY, an endpoint whose nf_endpoints write fails is rolled back: no entry, no hooks, nothing half-written', (t) => {
  const io = new RecordingIO({ nf_peer_cidr: 1 });
  const att = new FakeAttacher();
  apply(io, att, { tables: { 1: 1 }, endpoints: [{ ifindex: 5, ingress: 1, egress: 0 }] });
  io.failUpdate = (map, key) => map === 'nf_endpoints' && key.readUInt32LE(0) === 6;
  const r = apply(io, att, {
    tables: { 1: 1, 2: 1 },
    endpoints: [
      { ifindex: 5, ingress: 1, egress: 0 },
      { ifindex: 6, ingress: 2, egress: 0 },
    ],
  });
  t.true(r.ok);
  t.deepEqual(r.programmed, []);
  t.deepEqual(
    r.failed.map((f) => [f.ifname, f.fallback]),
    [['veth6', undefined]],
  );
  t.regex(r.failed[0].error, /^program endpoint veth6: update nf_endpoints: write failed \(EIO\)/);
  t.is(entryOf(io, 6), null);
  t.false(att.hooks.has('veth6/ingress') || att.hooks.has('veth6/egress'));
  t.is(rulesOf(io, 2) + rulesOf(io, ISO), 0, 'nothing half-written');
});

test('a full identity map still fails the shared entries all or nothing, tables included', (t) => {
  const io = new RecordingIO({ nf_ident_exact: 1 });
  const att = new FakeAttacher();
  apply(io, att, { tables: { 1: 1 }, endpoints: [{ ifindex: 5, ingress: 1, egress: 0 }] });
  const before = io.snapshot();
  const r = apply(io, att, {
    tables: { 2: 1 },
    endpoints: [
      { ifindex: 5, ingress: 2, egress: 0, revision: 2 },
      { ifindex: 6, ingress: 2, egress: 0 },
    ],
  });
  t.false(r.ok);
  t.is(r.fullMap, 'nf_ident_exact');
  t.deepEqual(io.snapshot(), before);
});

test('new endpoints that fail never take away a new table an earlier new endpoint uses', (t) => {
  const io = new RecordingIO();
  const att = new FakeAttacher();
  att.failAttach.add('veth6/ingress');
  att.failAttach.add('veth7/ingress');
  const r = apply(io, att, {
    tables: { 1: 2 },
    endpoints: [5, 6, 7].map((ifindex) => ({ ifindex, ingress: 1, egress: 0 })),
  });
  t.deepEqual(r.programmed, ['veth5']);
  t.deepEqual(
    r.failed.map((f) => f.ifname),
    ['veth6', 'veth7'],
  );
  t.is(rulesOf(io, 1), 2);
  t.is(entryOf(io, 5)?.ingressTable, 1);
});
