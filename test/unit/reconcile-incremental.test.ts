// Reconciler: passes diff against the last applied state (no map reads, exactly the
// changed writes); the maps are read at the first pass, on verify() (resync: drift
// repair) and after a pass that failed.
import test from 'ava';
import { Compiler } from '../../src/compile';
import type { CompileResult, DesiredMaps } from '../../src/compile/output';
import { encodeAddr } from '../../src/wire/addr';
import { encodeU32, keyHex } from '../../src/wire/bytes';
import type { Snapshot } from '../../src/model/types';
import { Reconciler } from '../../src/reconcile/reconciler';
import { planDiff } from '../../src/reconcile/plan';
import { namespace, netpol, node, pod, podsPeer, n1Endpoints, rule, snapshot } from '../helpers/snapshot-builders';
import { FakeAttacher, RecordingIO, build, rulesOf, type Op } from './_reconcile';

const base = (): Snapshot =>
  snapshot({
    namespaces: [namespace('app'), namespace('db')],
    nodes: [node('n1', ['192.168.0.1']), node('n2', ['192.168.0.2'])],
    pods: [
      ...Array.from({ length: 40 }, (_, i) =>
        pod('app', `web-${i}`, [`10.0.0.${i + 1}`], { app: 'web' }, { nodeName: i % 2 ? 'n2' : 'n1' }),
      ),
      pod('db', 'pg-1', ['10.0.1.1'], { app: 'pg' }, { nodeName: 'n1' }),
    ],
    policies: [
      netpol('db', 'pg-from-web', { app: 'pg' }, [
        rule('ingress', 0, [podsPeer('app', { app: 'web' })], [{ protocol: 'TCP', port: 5432 }]),
      ]),
      netpol('app', 'web-egress', { app: 'web' }, [
        rule('egress', 0, [podsPeer('db', { app: 'pg' })], [{ protocol: 'TCP', port: 5432 }]),
      ]),
    ],
  });

/** The map operations that take `from` to `to`, as the recording IO logs them. */
function expectedOps(to: DesiredMaps, from: DesiredMaps): string[] {
  return planDiff(to, from)
    .diffs.flatMap((d) => [
      ...d.updates.map((e): Op => ({ op: 'update', map: d.map, key: keyHex(e.key) })),
      ...d.deletes.map((k): Op => ({ op: 'delete', map: d.map, key: keyHex(k) })),
    ])
    .map((o) => `${o.op} ${o.map} ${o.key}`)
    .sort();
}

const opsOf = (io: RecordingIO): string[] => io.ops.map((o) => `${o.op} ${o.map} ${o.key}`).sort();

/** The maps hold exactly `want`. */
function holds(io: RecordingIO, want: DesiredMaps): boolean {
  return Object.entries(want).every(([m, c]) => {
    const have = io.maps.get(m as keyof DesiredMaps) ?? new Map();
    return have.size === c.size && [...c].every(([hex, e]) => have.get(hex)?.value.equals(e.value));
  });
}

function agentLike(): {
  io: RecordingIO;
  att: FakeAttacher;
  rec: Reconciler;
  compiler: Compiler;
  pass(s: Snapshot): CompileResult;
} {
  const io = new RecordingIO();
  const att = new FakeAttacher();
  const rec = new Reconciler(io, att);
  const compiler = new Compiler();
  return {
    io,
    att,
    rec,
    compiler,
    pass(s) {
      const c = compiler.compile(s, 'n1', n1Endpoints(s));
      if (c.errors.length) throw new Error(c.errors.join('; '));
      io.ops = [];
      io.reads = 0;
      const r = rec.apply(c.maps, c.endpoints);
      if (!r.ok || r.failed.length) throw new Error(`reconcile: ${r.error ?? r.failed.map((f) => f.error).join('; ')}`);
      return c;
    },
  };
}

test('after a pod add, a pass reads no map and writes exactly the changed entries', (t) => {
  const a = agentLike();
  const s1 = base();
  const c1 = a.pass(s1);
  t.true(a.io.reads > 0, 'the first pass reads the maps (adopting pins)');
  t.true(holds(a.io, c1.maps));

  const s2 = { ...s1, pods: [...s1.pods, pod('app', 'web-77', ['10.0.0.77'], { app: 'web' }, { nodeName: 'n1' })] };
  const c2 = a.pass(s2);
  t.is(a.io.reads, 0);
  const ops = opsOf(a.io);
  t.deepEqual(ops, expectedOps(c2.maps, c1.maps));
  t.is(ops.length, 3, 'identity, local address, endpoint');
  t.true(a.att.hooks.has('veth177/ingress') && a.att.hooks.has('veth177/egress'));
  t.true(holds(a.io, c2.maps));

  // Removing it again: exactly its deletes, still no reads; the same state once more: nothing.
  const c3 = a.pass(s1);
  t.is(a.io.reads, 0);
  t.deepEqual(opsOf(a.io), expectedOps(c3.maps, c2.maps));
  t.true(holds(a.io, c3.maps));
  a.pass(s1);
  t.is(a.io.reads, 0);
  t.deepEqual(a.io.ops, []);
});

test('a policy change writes exactly its table changes without reading the maps', (t) => {
  const a = agentLike();
  const s1 = base();
  const c1 = a.pass(s1);
  const s2 = {
    ...s1,
    policies: [
      ...s1.policies,
      netpol('app', 'web-in', { app: 'web' }, [
        rule('ingress', 0, [podsPeer('app', { app: 'web' })], [{ protocol: 'TCP', port: 80 }]),
      ]),
    ],
  };
  const c2 = a.pass(s2);
  t.is(a.io.reads, 0);
  t.deepEqual(opsOf(a.io), expectedOps(c2.maps, c1.maps));
  t.true(a.io.ops.some((o) => o.map === 'nf_rules'));
  t.true(holds(a.io, c2.maps));
});

test('an entry changed behind the reconciler is repaired at the next verify (resync), not before', (t) => {
  const a = agentLike();
  const s = base();
  const c = a.pass(s);
  const [victim] = [...c.maps.nf_ident_exact.values()];
  const bogus = encodeU32(0xdead);
  a.io.maps.get('nf_ident_exact')!.set(keyHex(victim.key), { key: victim.key, value: bogus });
  a.io.maps.get('nf_ident_exact')!.set(keyHex(encodeAddr('10.9.9.9')), { key: encodeAddr('10.9.9.9'), value: bogus });
  const [gone] = [...c.maps.nf_rules.values()];
  a.io.maps.get('nf_rules')!.delete(keyHex(gone.key));

  // An ordinary pass trusts memory: no reads, nothing written.
  a.pass(s);
  t.is(a.io.reads, 0);
  t.deepEqual(a.io.ops, []);
  t.false(holds(a.io, c.maps));

  a.rec.verify();
  a.pass(s);
  t.true(a.io.reads > 0);
  t.deepEqual(
    opsOf(a.io),
    [
      `delete nf_ident_exact ${keyHex(encodeAddr('10.9.9.9'))}`,
      `update nf_ident_exact ${keyHex(victim.key)}`,
      `update nf_rules ${keyHex(gone.key)}`,
    ].sort(),
  );
  t.true(holds(a.io, c.maps));
  // Repaired and known again: the pass after reads nothing.
  a.pass(s);
  t.is(a.io.reads, 0);
});

test('a new reconciler over maps left by another (restart) reads them and writes nothing', (t) => {
  const a = agentLike();
  const c = a.pass(base());
  const rec = new Reconciler(a.io, a.att);
  a.io.ops = [];
  a.io.reads = 0;
  const r = rec.apply(c.maps, c.endpoints);
  t.true(r.read && r.exact);
  t.true(a.io.reads > 0);
  t.deepEqual(a.io.ops, []);
});

test('after a failed endpoint the next pass reads the maps again, and retries it', (t) => {
  const io = new RecordingIO();
  const att = new FakeAttacher();
  const rec = new Reconciler(io, att);
  const a = build({ tables: { 1: 1 }, endpoints: [{ ifindex: 5, ingress: 1, egress: 0 }] });
  t.true(rec.apply(a.maps, a.endpoints).exact);

  const b = build({
    tables: { 1: 1, 2: 2 },
    endpoints: [
      { ifindex: 5, ingress: 1, egress: 0 },
      { ifindex: 6, ingress: 2, egress: 0 },
    ],
  });
  att.failAttach.add('veth6/egress');
  io.reads = 0;
  const r1 = rec.apply(b.maps, b.endpoints);
  t.false(r1.read);
  t.is(io.reads, 0);
  t.deepEqual(
    r1.failed.map((f) => f.ifname),
    ['veth6'],
  );
  t.false(r1.exact);
  // Rolled back exactly as before: its table and entry are gone, its hooks detached.
  t.is(rulesOf(io, 2), 0);
  t.is(io.lookup('nf_endpoints', encodeU32(6)), null);
  t.false(att.hooks.has('veth6/ingress'));

  att.failAttach.clear();
  io.reads = 0;
  const r2 = rec.apply(b.maps, b.endpoints);
  t.true(r2.read);
  t.true(io.reads > 0);
  t.deepEqual(r2.programmed, ['veth6']);
  t.true(r2.exact);
  t.is(rulesOf(io, 2), 2);
  io.reads = 0;
  t.false(rec.apply(b.maps, b.endpoints).read);
  t.is(io.reads, 0);
});

test('after a failed shared phase the next pass reads the maps again', (t) => {
  const io = new RecordingIO();
  const att = new FakeAttacher();
  const rec = new Reconciler(io, att);
  const a = build({ tables: { 1: 1 }, endpoints: [{ ifindex: 5, ingress: 1, egress: 0 }] });
  rec.apply(a.maps, a.endpoints);
  const before = io.snapshot();
  // A new address (shared, all or nothing) fails to write: the new table goes again too.
  const b = build({ tables: { 1: 1, 2: 2 }, endpoints: [{ ifindex: 5, ingress: 2, egress: 0, ip: '10.0.0.99' }] });
  io.failUpdate = (m) => m === 'nf_ident_exact';
  const r1 = rec.apply(b.maps, b.endpoints);
  t.false(r1.ok);
  t.false(r1.exact);
  t.deepEqual(io.snapshot(), before, 'undone');

  io.failUpdate = undefined;
  io.reads = 0;
  const r2 = rec.apply(b.maps, b.endpoints);
  t.true(r2.read && r2.ok && r2.exact);
  t.true(io.reads > 0);
  t.is(rulesOf(io, 2), 2);
});

test('a pass that throws leaves the maps unknown: the next one reads', (t) => {
  const io = new RecordingIO();
  const att = new FakeAttacher();
  const rec = new Reconciler(io, att);
  const a = build({ tables: { 1: 1 }, endpoints: [{ ifindex: 5, ingress: 1, egress: 0 }] });
  rec.apply(a.maps, a.endpoints);
  att.list = () => {
    throw new Error('list links: injected');
  };
  t.throws(() => rec.apply(a.maps, a.endpoints), { message: /injected/ });
  att.list = FakeAttacher.prototype.list;
  t.true(rec.apply(a.maps, a.endpoints).read);
});
