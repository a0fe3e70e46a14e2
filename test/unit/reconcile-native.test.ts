// The reconciler against real kernel maps (the netfence object through the addon):
// minimal diffs on adoption, drift repaired at resync, the kernel's map-full error, and
// a layout migration, map capacities and their migration.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hooksFor } from '../../src/compile/hooks';
import { MAP_WRITE_ORDER } from '../../src/reconcile/order';
import type { CompiledEndpoint, DesiredMaps } from '../../src/compile/output';
import { NF_LAYOUT_VERSION, NF_RULE_DEFAULT, NF_TABLE_DENY, NfAction, NfEpFlag, NfTier } from '../../src/wire/abi';
import { bitmapFrom } from '../../src/compile/bitmap';
import { decodeEndpoint, encodeEndpoint } from '../../src/wire/endpoint';
import { encodeCidrKey, encodePortKey, encodeRule, encodeRuleKey } from '../../src/wire/tables';
import { encodeConfig } from '../../src/wire/config';
import { encodeU32, keyHex } from '../../src/wire/bytes';
import {
  DEFAULT_OBJECT,
  capacityMaxEntries,
  finishMigration,
  loadDatapath,
  mapFd,
  pruneProgramPins,
  readConfig,
} from '../../src/datapath/loader';
import { defaultCapacity } from '../../src/model/config';
import { native } from '../../src/datapath/native';
import type { TcDirection } from '../../src/datapath/native-api';
import { readMap } from '../../src/reconcile/mapio';
import { NativeMapIO } from '../../src/reconcile/native-mapio';
import type { Attacher, EndpointRef } from '../../src/datapath/attach';
import { reconcile } from '../../src/reconcile/apply';
import { Reconciler } from '../../src/reconcile/reconciler';
import { pruneRuleStats } from '../../src/reconcile/rule-stats';
import { pinDir, run } from '../native/helpers';

const hooks = new Set<string>();
const attacher: Attacher = {
  attached: (ep: EndpointRef, d: TcDirection) => hooks.has(`${ep.ifname}/${d}`),
  attach: (ep: EndpointRef, d: TcDirection) => void hooks.add(`${ep.ifname}/${d}`),
  detach: (ep: EndpointRef, d: TcDirection) => void hooks.delete(`${ep.ifname}/${d}`),
  list: () => [],
};

function desired(rules: number, ifindex = 3, table = 1): { maps: DesiredMaps; endpoints: CompiledEndpoint[] } {
  const maps = Object.fromEntries(MAP_WRITE_ORDER.map((m) => [m, new Map()])) as DesiredMaps;
  const put = (m: keyof DesiredMaps, key: Buffer, value: Buffer): void => void maps[m].set(keyHex(key), { key, value });
  for (let i = 0; i < rules; i++)
    put(
      'nf_rules',
      encodeRuleKey(table, i),
      encodeRule({ action: NfAction.ALLOW, tier: NfTier.NETPOL, tierEnd: rules, policyId: 0, ruleId: i }),
    );
  put('nf_ports', encodePortKey({ table, proto: 6, port: 80 }), bitmapFrom([0]));
  const entry = {
    id: 1,
    ingressTable: table,
    egressTable: 0,
    ingressChunks: 1,
    egressChunks: 0,
    flags: NfEpFlag.POD,
    revision: 1,
    statsSlot: ifindex,
  };
  put('nf_endpoints', encodeU32(ifindex), encodeEndpoint(entry));
  const ep: CompiledEndpoint = {
    ifname: `if${ifindex}`,
    ifindex,
    kind: 'pod',
    ...entry,
    hooks: hooksFor(entry),
    tunnel: false,
  };
  return { maps, endpoints: [ep] };
}

test.serial('real maps: apply, adopt after reopen with zero writes, map full names the map', (t) => {
  const root = pinDir(t);
  const dp = loadDatapath(native, { bpffsRoot: root });
  t.teardown(() => dp.close());
  t.is(dp.migration, undefined);
  t.is(readConfig(native, dp).layoutVersion, NF_LAYOUT_VERSION);
  const d = desired(3);
  const r = reconcile(new NativeMapIO(native, dp.maps), attacher, d.maps, d.endpoints);
  t.true(r.ok);
  t.deepEqual(r.updates, { nf_rules: 3, nf_ports: 1, nf_endpoints: 1 });

  // A second agent adopts the pins: nothing to write.
  const dp2 = loadDatapath(native, { bpffsRoot: root });
  t.teardown(() => dp2.close());
  const io2 = new NativeMapIO(native, dp2.maps);
  t.is(readMap(io2, 'nf_rules').size, 3);
  const r2 = reconcile(io2, attacher, d.maps, d.endpoints);
  t.deepEqual(r2.updates, {});
  t.deepEqual(r2.deletes, {});

  // The kernel's own E2BIG on a small private copy of the object.
  const small = native.openObject(DEFAULT_OBJECT, { maxEntries: { nf_rules: 2 } });
  t.teardown(() => small.close());
  const io3 = new NativeMapIO(native, new Map(small.maps().map((m) => [m.name, m])));
  const r3 = reconcile(io3, attacher, d.maps, d.endpoints);
  t.true(r3.ok);
  t.is(r3.fullMap, 'nf_rules');
  t.regex(r3.failed[0].error, /update nf_rules: map full \(E2BIG\).*no isolation table\): denies everything/);
  t.is(readMap(io3, 'nf_rules').size, 0, 'partial table rolled back');
  const entries = [...readMap(io3, 'nf_endpoints').values()].map((e) => decodeEndpoint(e.value));
  t.deepEqual(
    entries.map((e) => [e.ingressTable, e.egressTable]),
    [[NF_TABLE_DENY, 0]],
    'enforced deny-all, never open',
  );
});

test.serial('real maps: passes diff against memory; an entry changed behind the agent is repaired at verify', (t) => {
  const root = pinDir(t);
  const dp = loadDatapath(native, { bpffsRoot: root });
  t.teardown(() => dp.close());
  const rec = new Reconciler(new NativeMapIO(native, dp.maps), attacher);
  const d = desired(3, 4);
  t.true(rec.apply(d.maps, d.endpoints).read);
  // Another writer (bpftool, a stray process) changes a rule and drops the port entry.
  const rules = mapFd(dp, 'nf_rules');
  native.mapUpdate(
    rules,
    encodeRuleKey(1, 0),
    encodeRule({ action: NfAction.DENY, tier: NfTier.NETPOL, tierEnd: 3, policyId: 0, ruleId: 0 }),
  );
  native.mapDelete(mapFd(dp, 'nf_ports'), encodePortKey({ table: 1, proto: 6, port: 80 }));
  const trusted = rec.apply(d.maps, d.endpoints);
  t.false(trusted.read);
  t.deepEqual(trusted.updates, {});
  rec.verify();
  const repaired = rec.apply(d.maps, d.endpoints);
  t.true(repaired.read && repaired.exact);
  t.deepEqual(repaired.updates, { nf_rules: 1, nf_ports: 1 });
  t.deepEqual(native.mapLookup(rules, encodeRuleKey(1, 0)), d.maps.nf_rules.get(keyHex(encodeRuleKey(1, 0)))!.value);
});

test.serial(
  'layout migration: a foreign layout version loads fresh maps under staging, then replaces the pins',
  (t) => {
    const root = pinDir(t);
    const old = loadDatapath(native, { bpffsRoot: root });
    const d = desired(2);
    reconcile(new NativeMapIO(native, old.maps), attacher, d.maps, d.endpoints);
    native.mapUpdate(
      mapFd(old, 'nf_config'),
      encodeU32(0),
      encodeConfig({
        layoutVersion: 999,
        flags: 0,
        tunnelMark: 0,
        tunnelMarkMask: 0,
        uplinkIfindex: 0,
        eventsPerSec: 0,
      }),
    );
    const oldId = old.maps.get('nf_rules')!.id;
    old.close();

    const dp = loadDatapath(native, { bpffsRoot: root });
    t.teardown(() => dp.close());
    t.regex(dp.migration?.reason ?? '', /pinned layout version 999/);
    t.true(fs.existsSync(path.join(root, 'staging', 'nf_rules')));
    t.not(dp.maps.get('nf_rules')!.id, oldId);
    const r = reconcile(new NativeMapIO(native, dp.maps), attacher, d.maps, d.endpoints);
    t.true(r.ok);
    let switched = false;
    finishMigration(native, dp, () => (switched = true));
    t.true(switched);
    t.false(fs.existsSync(path.join(root, 'staging')));
    const pinned = native.mapOpenPinned(path.join(root, 'nf_rules'));
    t.teardown(() => native.closeFd(pinned.fd));
    t.is(pinned.id, dp.maps.get('nf_rules')!.id, 'the new map is pinned at the root');
    t.is(native.mapKeys(pinned.fd).length, 2);
  },
);

test.serial(
  'programs: the same object is adopted from its pins (no load); a changed object loads anew over the same maps',
  (t) => {
    const root = pinDir(t);
    const first = loadDatapath(native, { bpffsRoot: root });
    t.false(first.adopted);
    const progIds = [first.ingress.id, first.egress.id];
    const mapId = first.maps.get('nf_rules')!.id;
    first.close();

    const again = loadDatapath(native, { bpffsRoot: root });
    t.true(again.adopted);
    t.deepEqual([again.ingress.id, again.egress.id], progIds, 'the pinned programs, not a reload');
    t.is(again.maps.get('nf_rules')!.id, mapId);
    t.is(again.maps.get('nf_rules')!.name, 'nf_rules');
    again.close();

    // Same maps and code, different bytes: a new object as far as the hash goes.
    const variant = path.join(os.tmpdir(), `nf-variant-${process.pid}.bpf.o`);
    run('llvm-strip', ['--strip-debug', '-o', variant, DEFAULT_OBJECT]);
    t.teardown(() => fs.rmSync(variant, { force: true }));
    const changed = loadDatapath(native, { bpffsRoot: root, objectPath: variant });
    t.teardown(() => changed.close());
    t.false(changed.adopted);
    t.not(changed.objectHash, first.objectHash);
    t.false(progIds.includes(changed.ingress.id));
    t.is(changed.maps.get('nf_rules')!.id, mapId, 'compatible maps are kept');
    const progs = path.join(root, 'progs');
    t.deepEqual(
      fs.readdirSync(progs).sort(),
      [first.objectHash, changed.objectHash].sort(),
      'old programs stay until the hooks moved',
    );
    pruneProgramPins(changed);
    t.deepEqual(fs.readdirSync(progs), [changed.objectHash]);
  },
);

test.serial(
  'upgrade: pins without a map the new object has (nf_ep_counters) keep every pinned map and gain the new one; an obsolete pin goes',
  (t) => {
    const root = pinDir(t);
    const old = loadDatapath(native, { bpffsRoot: root });
    const d = desired(2);
    reconcile(new NativeMapIO(native, old.maps), attacher, d.maps, d.endpoints);
    const ids = new Map([...old.maps].map(([name, m]) => [name, m.id]));
    old.close();
    // The pinned layout of an agent from before nf_ep_counters existed: nf_ep_stats instead.
    native.unpin(path.join(root, 'nf_ep_counters'));
    const obsolete = native.mapCreate(10 /* LRU_PERCPU_HASH */, 'nf_ep_stats', 8, 16, 16, 0);
    native.pin(obsolete, path.join(root, 'nf_ep_stats'));
    native.closeFd(obsolete);

    const dp = loadDatapath(native, { bpffsRoot: root });
    t.teardown(() => dp.close());
    t.false(dp.adopted, 'not adoptable: a runtime map is missing');
    t.is(dp.migration, undefined, 'no migration: the layout version is the same');
    for (const [name, id] of ids) if (name !== 'nf_ep_counters') t.is(dp.maps.get(name)?.id, id, `${name} reused`);
    t.not(dp.maps.get('nf_ep_counters')?.id, ids.get('nf_ep_counters'), 'a new nf_ep_counters');
    const pinned = native.mapOpenPinned(path.join(root, 'nf_ep_counters'));
    t.teardown(() => native.closeFd(pinned.fd));
    t.is(pinned.id, dp.maps.get('nf_ep_counters')!.id, 'and it is pinned');
    t.false(fs.existsSync(path.join(root, 'nf_ep_stats')), 'the obsolete pin is gone');
    t.is(readMap(new NativeMapIO(native, dp.maps), 'nf_rules').size, 2, 'policy state kept');

    const again = loadDatapath(native, { bpffsRoot: root });
    t.teardown(() => again.close());
    t.true(again.adopted, 'complete pins are adopted again');
    t.is(again.maps.get('nf_ep_counters')!.id, pinned.id);
  },
);

test.serial('a retired table takes its counters out of nf_rule_stats; the live table keeps its own', (t) => {
  const root = pinDir(t);
  const dp = loadDatapath(native, { bpffsRoot: root });
  t.teardown(() => dp.close());
  const rec = new Reconciler(new NativeMapIO(native, dp.maps), attacher);
  const first = desired(3, 5, 1);
  t.deepEqual(rec.apply(first.maps, first.endpoints).retiredRuleKeys, []);
  const stats = mapFd(dp, 'nf_rule_stats');
  const counter = Buffer.alloc(16 * native.possibleCpus(), 1);
  const counted = [encodeRuleKey(1, 0), encodeRuleKey(1, NF_RULE_DEFAULT), encodeRuleKey(2, 0)];
  for (const k of counted) native.mapUpdate(stats, k, counter);

  // The endpoint moves to table 2: table 1 is retired with its three rules.
  const second = desired(3, 5, 2);
  const r = rec.apply(second.maps, second.endpoints);
  t.true(r.exact);
  t.deepEqual(
    r.retiredRuleKeys.map((k) => k.toString('hex')).sort(),
    [0, 1, 2].map((i) => encodeRuleKey(1, i).toString('hex')).sort(),
  );
  t.is(pruneRuleStats(native, stats, r.retiredRuleKeys), 2, 'rule 0 and the default counter of table 1 existed');
  t.is(native.mapLookup(stats, counted[0]), null);
  t.is(native.mapLookup(stats, counted[1]), null);
  t.not(native.mapLookup(stats, counted[2]), null, 'the live table keeps its counter');
  t.deepEqual(rec.apply(second.maps, second.endpoints).retiredRuleKeys, [], 'nothing retired twice');
});

test.serial('capacity: configured max_entries land in the kernel and the pins; the same capacity is adopted', (t) => {
  const root = pinDir(t);
  const capacity = { ...defaultCapacity(), peerCidrs: 300000, rules: 4096, endpoints: 100 };
  const dp = loadDatapath(native, { bpffsRoot: root, capacity });
  t.is(dp.migration, undefined);
  for (const [name, max] of Object.entries(capacityMaxEntries(capacity))) {
    const pinned = native.mapOpenPinned(path.join(root, name));
    native.closeFd(pinned.fd);
    t.is(pinned.maxEntries, max, name);
  }
  t.like(dp.maps.get('nf_local_addrs'), { maxEntries: 200 });
  dp.close();
  const again = loadDatapath(native, { bpffsRoot: root, capacity });
  t.teardown(() => again.close());
  t.true(again.adopted);
  t.is(again.migration, undefined);
});

test.serial(
  'capacity: a changed capacity migrates: policy maps refilled in staging, conntrack and counters carried, then the pins replaced',
  (t) => {
    const root = pinDir(t);
    const old = loadDatapath(native, { bpffsRoot: root });
    const d = desired(3);
    t.true(reconcile(new NativeMapIO(native, old.maps), attacher, d.maps, d.endpoints).ok);
    // Runtime state the agent cannot recompute: a tracked flow and a rule counter.
    const ct = old.maps.get('nf_ct')!;
    const flow = { key: Buffer.alloc(ct.keySize, 7), value: Buffer.alloc(ct.valueSize, 9) };
    native.mapUpdate(ct.fd, flow.key, flow.value);
    const counter = Buffer.alloc(16 * native.possibleCpus(), 3);
    native.mapUpdate(mapFd(old, 'nf_rule_stats'), encodeRuleKey(1, 0), counter);
    const oldIds = new Map([...old.maps].map(([name, m]) => [name, m.id]));
    old.close();

    const capacity = { ...defaultCapacity(), peerCidrs: 1 << 19, conntrack: 4096 };
    const dp = loadDatapath(native, { bpffsRoot: root, capacity });
    t.teardown(() => dp.close());
    t.regex(dp.migration?.reason ?? '', /nf_\w+ .*max_entries/);
    t.true(dp.migration?.carry);
    t.like(dp.maps.get('nf_peer_cidr'), { maxEntries: 1 << 19 });
    t.like(dp.maps.get('nf_ct'), { maxEntries: 4096 });
    const before = native.mapOpenPinned(path.join(root, 'nf_peer_cidr'));
    native.closeFd(before.fd);
    t.is(before.id, oldIds.get('nf_peer_cidr')!, 'the old pins stay in place until the switch');

    t.true(reconcile(new NativeMapIO(native, dp.maps), attacher, d.maps, d.endpoints).ok);
    const order: string[] = [];
    const carried = finishMigration(native, dp, () => {
      order.push('switch');
      // The hooks move while the old pins still exist, with the flows already carried.
      t.true(fs.existsSync(path.join(root, 'nf_ct')));
      t.deepEqual(native.mapLookup(mapFd(dp, 'nf_ct'), flow.key), flow.value);
    });
    t.deepEqual(order, ['switch']);
    t.like(carried, { nf_ct: 1, nf_rule_stats: 1 });
    t.false(fs.existsSync(path.join(root, 'staging')));
    for (const name of ['nf_peer_cidr', 'nf_ct', 'nf_rules', 'nf_endpoints']) {
      const pinned = native.mapOpenPinned(path.join(root, name));
      t.teardown(() => native.closeFd(pinned.fd));
      t.is(pinned.id, dp.maps.get(name)!.id, `${name}: the new map is pinned at the root`);
      t.not(pinned.id, oldIds.get(name));
    }
    const io = new NativeMapIO(native, dp.maps);
    t.is(readMap(io, 'nf_rules').size, 3, 'policy entries kept');
    t.is(readMap(io, 'nf_endpoints').size, 1);
    t.deepEqual(native.mapLookup(mapFd(dp, 'nf_rule_stats'), encodeRuleKey(1, 0)), counter);

    // The next agent with the same capacity adopts the migrated pins.
    const again = loadDatapath(native, { bpffsRoot: root, capacity });
    t.teardown(() => again.close());
    t.true(again.adopted);
    t.is(again.maps.get('nf_ct')!.maxEntries, 4096);
  },
);

test.serial(
  'capacity: with the default capacity a 100k-CIDR table is replaced by another 100k-CIDR table (old and new side by side)',
  (t) => {
    const root = pinDir(t);
    const dp = loadDatapath(native, { bpffsRoot: root });
    t.teardown(() => dp.close());
    const io = new NativeMapIO(native, dp.maps);
    const withCidrs = (table: number, second: number): ReturnType<typeof desired> => {
      const d = desired(1, 3, table);
      const bits = bitmapFrom([0]);
      for (let i = 0; i < 100_000; i++) {
        const key = encodeCidrKey(table, `${10 + (i >> 16)}.${second}.${(i >> 8) & 255}.${i & 255}/32`);
        d.maps.nf_peer_cidr.set(keyHex(key), { key, value: bits });
      }
      return d;
    };
    const first = withCidrs(1, 1);
    const r1 = reconcile(io, attacher, first.maps, first.endpoints);
    t.true(r1.ok && r1.failed.length === 0, r1.error);
    const second = withCidrs(2, 2);
    const r2 = reconcile(io, attacher, second.maps, second.endpoints);
    t.true(r2.ok, r2.error);
    t.deepEqual(r2.failed, []);
    t.is(r2.fullMap, undefined);
    t.is(readMap(io, 'nf_peer_cidr').size, 100_000, 'the old table is gone once the endpoint switched');
    t.is(decodeEndpoint(native.mapLookup(mapFd(dp, 'nf_endpoints'), encodeU32(3))!).ingressTable, 2);
  },
);

test.serial(
  'capacity: a capacity below what the pinned policy maps hold is refused at load; the pins stay as they are',
  (t) => {
    const root = pinDir(t);
    const old = loadDatapath(native, { bpffsRoot: root });
    const d = desired(5);
    t.true(reconcile(new NativeMapIO(native, old.maps), attacher, d.maps, d.endpoints).ok);
    const rulesId = old.maps.get('nf_rules')!.id;
    old.close();
    t.throws(() => loadDatapath(native, { bpffsRoot: root, capacity: { ...defaultCapacity(), rules: 4 } }), {
      message:
        'load datapath: capacity.rules 4 leaves nf_rules room for 4 entries, its pins hold 5: raise it (the pinned state stays enforced)',
    });
    t.false(fs.existsSync(path.join(root, 'staging')));
    const pinned = native.mapOpenPinned(path.join(root, 'nf_rules'));
    native.closeFd(pinned.fd);
    t.is(pinned.id, rulesId);
    // Room for exactly what is pinned migrates.
    const dp = loadDatapath(native, { bpffsRoot: root, capacity: { ...defaultCapacity(), rules: 5 } });
    t.teardown(() => dp.close());
    t.like(dp.maps.get('nf_rules'), { maxEntries: 5 });
    t.truthy(dp.migration);
  },
);
