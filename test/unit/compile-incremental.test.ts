// The long-lived Compiler: whatever it compiled before, its result is byte-identical
// (map contents and their order, endpoints, rules, names, errors) to a fresh compile,
// and a pod of an existing label set costs O(1) map changes without rebuilding tables.
import test from 'ava';
import { Compiler, compile } from '../../src/compile';
import { type CompileResult, changedKeys } from '../../src/compile/output';
import type { PolicyMapName } from '../../src/wire/maps';
import type { Policy } from '../../src/model/rules';
import type { PodObj, Snapshot } from '../../src/model/types';
import { planDiff } from '../../src/reconcile/plan';
import { nodeNames, synthesizeEndpoints } from '../../src/trace/endpoints';
import { randomSnapshot } from '../helpers/random-snapshot';
import { Rng } from '../helpers/rng';
import { namespace, netpol, node, pod, podsPeer, n1Endpoints, rule, snapshot } from '../helpers/snapshot-builders';

/** Everything a result says, maps in iteration order. */
function serialize(r: CompileResult): string {
  const maps = Object.entries(r.maps).map(([m, c]) => [
    m,
    [...c].map(([hex, e]) => `${hex}=${e.key.toString('hex')}:${e.value.toString('hex')}`),
  ]);
  return JSON.stringify([maps, r.endpoints, r.rules, r.policies, [...r.identities], r.errors]);
}

function compileAll(compiler: Compiler | undefined, s: Snapshot): string[] {
  return nodeNames(s).map((n) => serialize((compiler ?? new Compiler()).compile(s, n, synthesizeEndpoints(s, n))));
}

const replace = <T>(xs: T[], i: number, x?: T): T[] => [...xs.slice(0, i), ...(x ? [x] : []), ...xs.slice(i + 1)];

/** Small changes of the kinds a cluster sees, sharing unchanged objects as a watch would. */
function mutations(s: Snapshot, r: Rng): Snapshot[] {
  const pods = s.pods.filter((p) => !p.hostNetwork);
  const out: Snapshot[] = [];
  if (pods.length) {
    const like = r.pick(pods);
    const twin: PodObj = {
      ...like,
      name: `${like.name}-twin`,
      ips: like.ips.map((ip) => (ip.includes(':') ? `${ip}0` : ip.replace(/\.\d+$/, '.99'))),
      networks: [],
    };
    out.push({ ...s, pods: [...s.pods, twin] });
    out.push({ ...s, pods: replace(s.pods, s.pods.indexOf(r.pick(pods))) });
    const relabeled = r.pick(pods);
    out.push({
      ...s,
      pods: replace(s.pods, s.pods.indexOf(relabeled), { ...relabeled, labels: { ...relabeled.labels, app: 'db' } }),
    });
  }
  out.push({ ...s, pods: [...s.pods].reverse() });
  const ns = r.int(0, s.namespaces.length - 1);
  out.push({
    ...s,
    namespaces: replace(s.namespaces, ns, { ...s.namespaces[ns], labels: { ...s.namespaces[ns].labels, team: 'c' } }),
  });
  if (s.policies.length) {
    const i = r.int(0, s.policies.length - 1);
    const tweaked: Policy = {
      ...s.policies[i],
      priority: s.policies[i].priority + 1,
      rules: s.policies[i].rules.slice(1),
    };
    out.push({ ...s, policies: replace(s.policies, i, tweaked) });
    out.push({ ...s, policies: replace(s.policies, i) });
  }
  out.push({
    ...s,
    nodes: s.nodes.map((n, i) => (i === 0 ? { ...n, addresses: [...n.addresses, '192.168.9.9'] } : n)),
  });
  // The same content as fresh objects (what a re-parsed state directory yields).
  out.push(structuredClone(s));
  return out;
}

test('a warm Compiler produces what a fresh one does, whatever it compiled before', (t) => {
  const warm = new Compiler();
  let compared = 0;
  for (let seed = 1; seed <= 100; seed++) {
    const s = randomSnapshot(seed);
    const r = new Rng(seed);
    for (const variant of [s, ...mutations(s, r), s]) {
      const fresh = compileAll(undefined, variant);
      t.deepEqual(compileAll(warm, variant), fresh, `seed ${seed}`);
      compared += fresh.length;
    }
  }
  t.true(compared > 500, `${compared} compiles compared`);
});

/** A watch's next state: pods appended, deleted, replaced by equal ones, relabeled or
 *  re-addressed, a policy tweaked, or any of mutations(). */
function step(s: Snapshot, r: Rng, serial: number): Snapshot {
  const pods = s.pods.filter((p) => !p.hostNetwork && !p.networks.length);
  if (!pods.length) return r.pick(mutations(s, r));
  const like = r.pick(pods);
  const at = s.pods.indexOf(like);
  switch (r.int(0, 4)) {
    case 0:
      return {
        ...s,
        pods: [...s.pods, { ...like, name: `${like.name}-${serial}`, ips: [`10.77.${serial >> 8}.${serial & 255}`] }],
      };
    case 1:
      return { ...s, pods: replace(s.pods, at) };
    case 2:
      return { ...s, pods: replace(s.pods, at, { ...like }) };
    case 3:
      return { ...s, pods: replace(s.pods, at, { ...like, ips: [`10.78.${serial >> 8}.${serial & 255}`] }) };
    default:
      return r.pick(mutations(s, r));
  }
}

/** The reconciler's diff from `from` to `to`, and the same diffed in full (flat copies). */
function bothDiffs(to: CompileResult, from: CompileResult): [string, string] {
  const flat = (maps: CompileResult['maps']) =>
    Object.fromEntries(Object.entries(maps).map(([m, c]) => [m, new Map(c)])) as CompileResult['maps'];
  const text = (plan: ReturnType<typeof planDiff>) =>
    JSON.stringify(
      plan.diffs.map((d) => [
        d.map,
        d.updates.map((u) => u.key.toString('hex')),
        d.deletes.map((k) => k.toString('hex')),
      ]),
    );
  return [text(planDiff(to.maps, from.maps)), text(planDiff(flat(to.maps), flat(from.maps)))];
}

test('a warm Compiler following a chain of changes matches a fresh one at every step, and its diffs are the full ones', (t) => {
  let compared = 0;
  let derived = 0;
  for (let seed = 1; seed <= 40; seed++) {
    const r = new Rng(1000 + seed);
    let s = randomSnapshot(seed);
    const n = nodeNames(s)[0];
    const warm = new Compiler();
    let prev: CompileResult | undefined;
    for (let i = 0; i < 30; i++, s = step(s, r, i)) {
      const endpoints = synthesizeEndpoints(s, n);
      const got = warm.compile(s, n, endpoints);
      t.is(serialize(got), serialize(new Compiler().compile(s, n, endpoints)), `seed ${seed} step ${i}`);
      if (prev) {
        const [incremental, full] = bothDiffs(got, prev);
        t.is(incremental, full, `seed ${seed} step ${i}: diff`);
        if (changedKeys(got.maps.nf_ident_exact, prev.maps.nf_ident_exact)) derived++;
      }
      prev = got;
      compared++;
    }
  }
  t.true(compared >= 1200, `${compared} compiles compared`);
  t.true(derived > 200, `${derived} address maps derived from the last`);
});

test('compile() is the one-shot form of Compiler.compile', (t) => {
  const s = randomSnapshot(7);
  const n = nodeNames(s)[0];
  t.is(
    serialize(compile(s, n, synthesizeEndpoints(s, n))),
    serialize(new Compiler().compile(s, n, synthesizeEndpoints(s, n))),
  );
});

const base = (extra: PodObj[] = []) =>
  snapshot({
    namespaces: [namespace('app'), namespace('db')],
    nodes: [node('n1', ['192.168.0.1']), node('n2', ['192.168.0.2'])],
    pods: [
      ...Array.from({ length: 50 }, (_, i) =>
        pod('app', `web-${i}`, [`10.0.0.${i + 1}`], { app: 'web' }, { nodeName: i % 2 ? 'n2' : 'n1' }),
      ),
      pod('db', 'pg-1', ['10.0.1.1'], { app: 'pg' }),
      ...extra,
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

/** Map writes (updates + deletes) from `from` to `to`, per map. */
function changes(to: CompileResult, from: CompileResult): Partial<Record<PolicyMapName, number>> {
  return Object.fromEntries(
    planDiff(to.maps, from.maps).diffs.map((d) => [d.map, d.updates.length + d.deletes.length]),
  );
}

test('warm: a pod of an existing label set added or removed is O(1) map changes and reuses the tables', (t) => {
  const compiler = new Compiler();
  const s1 = base();
  const r1 = compiler.compile(s1, 'n1', n1Endpoints(s1));
  t.deepEqual(r1.errors, []);

  const local = pod('app', 'web-new', ['10.0.0.200'], { app: 'web' }, { nodeName: 'n1' });
  const s2 = { ...s1, pods: [...s1.pods, local] };
  const r2 = compiler.compile(s2, 'n1', n1Endpoints(s2));
  t.deepEqual(changes(r2, r1), { nf_ident_exact: 1, nf_local_addrs: 1, nf_endpoints: 1 });
  // The table maps are the previous result's: nothing table-related was recompiled.
  for (const m of ['nf_rules', 'nf_ports', 'nf_peer_cidr', 'nf_peer_ident'] as const) t.is(r2.maps[m], r1.maps[m], m);
  t.is(serialize(r2), serialize(compile(s2, 'n1', n1Endpoints(s2))));

  const remote = pod('app', 'web-far', ['10.0.0.201'], { app: 'web' }, { nodeName: 'n2' });
  const s3 = { ...s2, pods: [...s2.pods, remote] };
  const r3 = compiler.compile(s3, 'n1', n1Endpoints(s3));
  t.deepEqual(changes(r3, r2), { nf_ident_exact: 1 });

  // Removing the first pod of a label set keeps its identity (another pod has it).
  const s4 = { ...s3, pods: s3.pods.filter((p) => p.name !== 'web-0') };
  const r4 = compiler.compile(s4, 'n1', n1Endpoints(s4));
  t.deepEqual(changes(r4, r3), { nf_ident_exact: 1, nf_local_addrs: 1, nf_endpoints: 1 });
  t.is(r4.maps.nf_peer_ident, r3.maps.nf_peer_ident);
  t.is(serialize(r4), serialize(compile(s4, 'n1', n1Endpoints(s4))));
});

test('warm: a policy change rebuilds only what it touches and matches a fresh compile', (t) => {
  const compiler = new Compiler();
  const s1 = base();
  const r1 = compiler.compile(s1, 'n1', n1Endpoints(s1));
  const changed = netpol('db', 'pg-from-web', { app: 'pg' }, [
    rule('ingress', 0, [podsPeer('app', { app: 'web' })], [{ protocol: 'TCP', port: 5433 }]),
  ]);
  const s2 = { ...s1, policies: [changed, s1.policies[1]] };
  const r2 = compiler.compile(s2, 'n1', n1Endpoints(s2));
  t.is(serialize(r2), serialize(compile(s2, 'n1', n1Endpoints(s2))));
  // pg-1's ingress table changes (its port trie, and so its table id); web's tables stay.
  const web1 = (r: CompileResult) => r.endpoints.find((e) => e.pod === 'app/web-0')!;
  const pg1 = (r: CompileResult) => r.endpoints.find((e) => e.pod === 'db/pg-1')!;
  t.is(web1(r2).egressTable, web1(r1).egressTable);
  t.not(pg1(r2).ingressTable, pg1(r1).ingressTable);
  // Changed back: the same tables, so the same table maps as the first result.
  const r3 = compiler.compile(s1, 'n1', n1Endpoints(s1));
  t.is(r3.maps.nf_peer_ident, r1.maps.nf_peer_ident);
  t.deepEqual(changes(r3, r1), {});
});

test('duplicate pod names and a pod address shared with a node: the first pod of a name is enforced, warm equals fresh', (t) => {
  const base = snapshot({
    namespaces: [namespace('app')],
    nodes: [node('n1', ['192.168.0.1'])],
    pods: [pod('app', 'web', ['10.0.0.1'], { app: 'web' }), pod('app', 'db', ['10.0.0.2'], { app: 'db' })],
    policies: [netpol('app', 'to-web', { app: 'web' }, [rule('ingress', 0, [podsPeer('app', { app: 'db' })], null)])],
  });
  const dup = { ...base, pods: [...base.pods, pod('app', 'web', ['10.0.0.3'], { app: 'other' })] };
  const shared = { ...base, pods: [...base.pods, pod('app', 'shadow', ['192.168.0.1'], { app: 'db' })] };
  const warm = new Compiler();
  for (const s of [base, dup, base, shared, dup, base]) t.deepEqual(compileAll(warm, s), compileAll(undefined, s));
  const web = { ifname: 'veth-web', ifindex: 7, kind: 'pod' as const, pod: 'app/web' };
  const r = compile(dup, 'n1', [web]);
  t.not(r.endpoints[0].ingressTable, 0, 'the first app/web (app=web), which the policy selects');
  t.deepEqual(r.errors, []);
  t.deepEqual(compile(shared, 'n1', []).errors, [
    'assign identity 192.168.0.1: address already owned by pod app/shadow',
  ]);
});
