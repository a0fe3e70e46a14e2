// Random clusters judged twice: by the project (YAML written to a state directory, loaded with
// loadStateDir, verdicts from the reference evaluator's podMatrix) and by an independent
// oracle written from the Kubernetes NetworkPolicy spec (test/helpers/spec-oracle.ts, which
// shares no code with src/). Every ordered pair of distinct pods is compared for several
// (protocol, port) probes (container port numbers, so named ports, the edges of every port
// range, other ports) in each address family both pods have. Pod-to-pod traffic only: no
// hostNetwork pods, no node addresses, no loopback (see src/reference/evaluate.ts).
//
// SPEC_ORACLE_CLUSTERS=n runs n clusters (default 1400; the variant test a quarter as many) from
// seed SPEC_ORACLE_FIRST_SEED (default 1); SPEC_ORACLE_SEED=s runs seed s only (a failure names it).
import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { dump } from 'js-yaml';
import { stringify } from 'yaml';
import { loadStateDir } from '../../src/sources/directory';
import { podMatrix } from '../../src/reference/matrix';
import { Rng } from '../helpers/rng';
import { generateCluster, type GenOptions } from '../helpers/spec-cluster-gen';
import {
  cidrContains,
  oracleCluster,
  oracleVerdict,
  parseAddr,
  selectorMatches,
  type OracleCluster,
  type Proto,
} from '../helpers/spec-oracle';

const CLUSTERS = Number(process.env.SPEC_ORACLE_CLUSTERS ?? 1400);
const FIRST_SEED = Number(process.env.SPEC_ORACLE_FIRST_SEED ?? 1);
const ONLY_SEED = process.env.SPEC_ORACLE_SEED === undefined ? undefined : Number(process.env.SPEC_ORACLE_SEED);

interface Probe {
  protocol: Proto;
  port: number;
}

/* eslint-disable @typescript-eslint/no-explicit-any */
/** Ports worth probing: container ports (named ports resolve to them), the edges of every rule's
 *  port or range, a few others; at most `max`, chosen by the cluster's seed. */
function probes(seed: number, objects: any[], max = 6): Probe[] {
  const r = new Rng(seed ^ 0x5eed);
  const seen = new Map<string, Probe>();
  const add = (protocol: Proto, port: number) => {
    if (port >= 1 && port <= 65535) seen.set(`${protocol}/${port}`, { protocol, port });
  };
  for (const o of objects) {
    if (o.kind === 'Pod') {
      for (const c of o.spec.containers) for (const p of c.ports ?? []) add(p.protocol ?? 'TCP', p.containerPort);
    }
    if (o.kind === 'NetworkPolicy') {
      for (const rule of [...(o.spec.ingress ?? []), ...(o.spec.egress ?? [])]) {
        for (const p of rule.ports ?? []) {
          if (typeof p.port !== 'number') continue;
          const proto: Proto = p.protocol ?? 'TCP';
          const end = p.endPort ?? p.port;
          for (const port of [p.port - 1, p.port, end, end + 1]) add(proto, port);
        }
      }
    }
  }
  const all = r.shuffle([...seen.values()]).slice(0, max - 2);
  // The same numbers over another protocol, and something no rule names.
  const other = r.pick(['TCP', 'UDP', 'SCTP'] as const);
  all.push({ protocol: other, port: all.length ? r.pick(all).port : 80 });
  all.push({ protocol: r.pick(['TCP', 'UDP', 'SCTP'] as const), port: r.int(1, 65535) });
  return all;
}

/** The objects as YAML in a state directory, in one of the shapes people write: one multi-document
 *  file (js-yaml or yaml's style), JSON (YAML's flow subset), a v1 List, or a file per object. */
function writeState(dir: string, objects: any[], seed: number): void {
  for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f));
  const write = (name: string, text: string) => fs.writeFileSync(path.join(dir, name), text);
  switch (seed % 10) {
    case 0:
      write('cluster.yaml', objects.map((o) => stringify(o)).join('---\n'));
      break;
    case 1:
      write('cluster.yaml', objects.map((o) => JSON.stringify(o)).join('\n---\n'));
      break;
    case 2:
      write('cluster.yml', dump({ apiVersion: 'v1', kind: 'List', items: objects }));
      break;
    case 3:
      objects.forEach((o, i) => write(`${String(i).padStart(2, '0')}-${o.kind.toLowerCase()}.yaml`, dump(o)));
      break;
    default:
      write('cluster.yaml', objects.map((o) => dump(o)).join('---\n'));
  }
}

interface Mismatch {
  seed: number;
  text: string;
}

function checkCluster(seed: number, dir: string, opts: GenOptions): { mismatches: Mismatch[]; compared: number } {
  const { objects } = generateCluster(seed, opts);
  writeState(dir, objects, seed);
  const s = loadStateDir(dir);
  const mismatches: Mismatch[] = [];
  const fail = (text: string) => mismatches.push({ seed, text });
  if (s.errors.length) {
    fail(`load errors: ${JSON.stringify(s.errors)}`);
    return { mismatches, compared: 0 };
  }
  const oc: OracleCluster = oracleCluster(objects);
  if (s.pods.length !== oc.pods.length) fail(`loaded ${s.pods.length} pods, oracle has ${oc.pods.length}`);
  let compared = 0;
  for (const probe of probes(seed, objects)) {
    for (const family of [4, 6] as const) {
      const withFamily = oc.pods
        .map((pod) => ({ pod, addr: pod.ips.find((a) => a.family === family) }))
        .filter((p): p is { pod: (typeof oc.pods)[number]; addr: NonNullable<typeof p.addr> } => p.addr !== undefined);
      const got = new Map(
        podMatrix(s, { protocol: probe.protocol, port: probe.port, family }).map((p) => [`${p.from}>${p.to}`, p]),
      );
      for (const from of withFamily) {
        for (const to of withFamily) {
          if (from === to) continue;
          const key = `${from.pod.namespace}/${from.pod.name}>${to.pod.namespace}/${to.pod.name}`;
          const want = oracleVerdict(oc, from.pod, from.addr, to.pod, to.addr, probe.protocol, probe.port);
          const pair = got.get(key);
          compared++;
          if (pair === undefined) {
            fail(`${probe.protocol}/${probe.port} IPv${family} ${key}: missing from podMatrix`);
          } else if ((pair.verdict === 'allow') !== want.allow) {
            const d = pair.detail;
            fail(
              `${probe.protocol}/${probe.port} IPv${family} ${key}: oracle ${want.allow ? 'allow' : 'deny'} ` +
                `(egress ${want.egress}, ingress ${want.ingress}), project ${pair.verdict} ` +
                `(egress ${d.egress.verdict} ${d.egress.policy ?? ''} ${d.egress.rule ?? ''}, ` +
                `ingress ${d.ingress.verdict} ${d.ingress.policy ?? ''} ${d.ingress.rule ?? ''})`,
            );
          }
          got.delete(key);
        }
      }
      for (const key of got.keys()) fail(`${probe.protocol}/${probe.port} IPv${family} ${key}: unexpected pair`);
    }
  }
  return { mismatches, compared };
}

function runMany(t: import('ava').ExecutionContext, opts: GenOptions, firstSeed: number, count: number): void {
  const tmp = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(); // thousands of rewrites: keep them in memory
  const dir = fs.mkdtempSync(path.join(tmp, 'netfence-spec-oracle-'));
  try {
    const seeds = ONLY_SEED !== undefined ? [ONLY_SEED] : Array.from({ length: count }, (_, i) => firstSeed + i);
    const mismatches: Mismatch[] = [];
    let compared = 0;
    for (const seed of seeds) {
      const res = checkCluster(seed, dir, opts);
      mismatches.push(...res.mismatches);
      compared += res.compared;
    }
    const bySeed = [...new Set(mismatches.map((m) => m.seed))];
    t.log(`${seeds.length} clusters, ${compared} pod pairs x probes compared, ${bySeed.length} seeds disagree`);
    t.deepEqual(
      mismatches.slice(0, 20).map((m) => `seed ${m.seed}: ${m.text}`),
      [],
      `seeds that disagree (SPEC_ORACLE_SEED=<seed> reruns one): ${bySeed.slice(0, 30).join(', ')}`,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('the project agrees with the spec oracle on random clusters', (t) => {
  runMany(t, {}, FIRST_SEED, CLUSTERS);
});

test('the project agrees with the spec oracle with non-canonical CIDRs, IPv6 text forms and nulls', (t) => {
  runMany(
    t,
    { nonCanonicalCidrs: true, expandedV6: true, nulls: true },
    1_000_000 + FIRST_SEED,
    Math.ceil(CLUSTERS / 4),
  );
});

// The oracle's own reading, pinned on hand-made cases (independently of the project).
test('the oracle: selectors, addresses and CIDRs', (t) => {
  t.true(selectorMatches({}, {}));
  t.false(selectorMatches(null, { a: '1' }));
  t.true(selectorMatches({ matchExpressions: [{ key: 'a', operator: 'NotIn', values: ['1'] }] }, {}));
  t.false(selectorMatches({ matchExpressions: [{ key: 'a', operator: 'In', values: ['1'] }] }, {}));
  t.true(selectorMatches({ matchLabels: { a: '' } }, { a: '' }));
  t.false(selectorMatches({ matchExpressions: [{ key: 'toString', operator: 'Exists' }] }, {}));
  t.true(
    selectorMatches(
      { matchLabels: { a: '1' }, matchExpressions: [{ key: 'b', operator: 'DoesNotExist' }] },
      { a: '1' },
    ),
  );
  t.is(parseAddr('fd00:0000:0000:0002:0000:0000:0000:0003').value, parseAddr('FD00:0:0:2::3').value);
  t.is(parseAddr('::ffff:10.0.0.1').value, (0xffffn << 32n) | 0x0a000001n);
  t.is(parseAddr('::').value, 0n);
  t.true(cidrContains('10.244.1.5/16', parseAddr('10.244.200.1'))); // host bits ignored, like Go
  t.false(cidrContains('10.244.0.0/24', parseAddr('10.244.1.1')));
  t.false(cidrContains('0.0.0.0/0', parseAddr('fd00::1')));
  t.true(cidrContains('::/0', parseAddr('fd00::1')));
  t.true(cidrContains('fd00::/8', parseAddr('fdff:1::1')));
  t.false(cidrContains('fd00::/16', parseAddr('fd01::1')));
  t.true(cidrContains('10.244.0.7/32', parseAddr('10.244.0.7')));
});

test('the oracle: policyTypes defaulting, empty vs missing, peers, ports', (t) => {
  const ns = (name: string, labels = {}) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
  const pod = (namespace: string, name: string, ip: string, labels = {}, ports: unknown[] = []) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { namespace, name, labels },
    spec: { containers: [{ name: 'c', ports }] },
    status: { podIP: ip },
  });
  const np = (namespace: string, spec: unknown) => ({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { namespace, name: 'np' },
    spec,
  });
  const verdict = (policies: unknown[], protocol: Proto = 'TCP', port = 80) => {
    const c = oracleCluster([
      ns('x'),
      ns('y', { team: 'a' }),
      pod('x', 'a', '10.0.0.1', { app: 'a' }),
      pod('y', 'b', '10.0.0.2', { app: 'b' }, [{ name: 'http', containerPort: 8080 }]),
      ...policies,
    ]);
    const [a, b] = c.pods;
    return oracleVerdict(c, a, a.ips[0], b, b.ips[0], protocol, port);
  };
  // `egress: []` without policyTypes is Ingress only; with policyTypes [Egress] it denies all.
  t.true(verdict([np('x', { podSelector: {}, egress: [] })]).allow);
  t.false(verdict([np('x', { podSelector: {}, policyTypes: ['Egress'] })]).allow);
  // A listed type decides: ingress rules of an Egress-only policy are ignored.
  t.true(verdict([np('y', { podSelector: {}, policyTypes: ['Egress'], ingress: [] })]).allow);
  t.false(verdict([np('y', { podSelector: {}, ingress: [] })]).allow);
  t.true(verdict([np('y', { podSelector: {}, ingress: [{}] })]).allow);
  t.true(verdict([np('y', { podSelector: {}, ingress: [{ from: [], ports: [] }] })]).allow);
  // podSelector alone is the policy's namespace; namespaceSelector {} is every namespace.
  t.false(verdict([np('y', { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] })]).allow);
  t.true(verdict([np('y', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {} }] }] })]).allow);
  const both = (nsSel: unknown) => [
    np('y', {
      podSelector: {},
      ingress: [{ from: [{ namespaceSelector: nsSel, podSelector: { matchLabels: { app: 'a' } } }] }],
    }),
  ];
  t.true(verdict(both({ matchLabels: { 'kubernetes.io/metadata.name': 'x' } })).allow);
  t.false(verdict(both({ matchLabels: { team: 'a' } })).allow);
  // ipBlock except; ports: protocol default TCP, endPort inclusive, named port on the destination.
  const from = (peer: unknown, ports?: unknown) => [np('y', { podSelector: {}, ingress: [{ from: [peer], ports }] })];
  t.true(verdict(from({ ipBlock: { cidr: '10.0.0.0/30' } })).allow);
  t.false(verdict(from({ ipBlock: { cidr: '10.0.0.0/30', except: ['10.0.0.1/32'] } })).allow);
  const any = { namespaceSelector: {} };
  t.true(verdict(from(any, [{ port: 80 }])).allow);
  t.false(verdict(from(any, [{ port: 80 }]), 'UDP').allow);
  t.true(verdict(from(any, [{ port: 70, endPort: 80 }])).allow);
  t.false(verdict(from(any, [{ port: 70, endPort: 79 }])).allow);
  t.true(verdict(from(any, [{ protocol: 'SCTP' }]), 'SCTP', 9).allow);
  t.true(verdict(from(any, [{ port: 'http' }]), 'TCP', 8080).allow);
  t.false(verdict(from(any, [{ port: 'http', protocol: 'UDP' }]), 'UDP', 8080).allow);
});
