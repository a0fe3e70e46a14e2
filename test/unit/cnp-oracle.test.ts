// Random seeded clusters of ClusterNetworkPolicies (both tiers, Accept/Deny/Pass) and
// NetworkPolicies, written as YAML, loaded by the project's directory loader and judged
// pod pair by pod pair against an independent oracle written from the upstream API text
// (test/helpers/cnp-oracle.ts, which shares no code with src/). A failure names the seed:
// CNP_ORACLE_SEED=<seed> runs that one alone, CNP_ORACLE_DUMP=<dir> keeps its YAML,
// CNP_ORACLE_CLUSTERS=<n> changes the number of clusters (2000: about 16 s on 2 cores).
import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadAll } from 'js-yaml';
import { loadStateDir } from '../../src/sources/directory';
import { podMatrix } from '../../src/reference/matrix';
import {
  Oracle,
  type CnpPeer,
  type CnpRule,
  type Packet,
  type RawCnp,
  type RawNp,
  type RawObject,
  type RawPod,
} from '../helpers/cnp-oracle';
import { generateCluster, toYaml } from '../helpers/cnp-cluster';

const CLUSTERS = Number(process.env.CNP_ORACLE_CLUSTERS ?? 2000);

interface Mismatch {
  seed: number;
  probe: string;
  pair: string;
  oracle: string;
  project: string;
  why: string;
}

function check(seed: number, dir: string): { mismatches: Mismatch[]; pairs: number; errors: string[] } {
  const { objects, probes } = generateCluster(seed);
  const text = toYaml(objects);
  fs.writeFileSync(path.join(dir, 'cluster.yaml'), text);
  const s = loadStateDir(dir);
  const errors = s.errors.map((e) => `${e.object} ${e.field}: ${e.message}`);
  const policies = objects.filter((o) => o.kind === 'ClusterNetworkPolicy' || o.kind === 'NetworkPolicy').length;
  const loaded = s.policies.filter((p) => p.tier !== 'system').length;
  if (loaded !== policies) errors.push(`loaded ${loaded} policies of ${policies}`);
  // The oracle reads the objects back from the very YAML the project loaded.
  const oracle = new Oracle(loadAll(text) as RawObject[]);
  const mismatches: Mismatch[] = [];
  let pairs = 0;
  for (const probe of probes) {
    {
      const fam = probe.family ?? 4;
      const actual = new Map(
        podMatrix(s, { protocol: probe.protocol, port: probe.port, family: fam }).map((p) => [`${p.from}>${p.to}`, p]),
      );
      const pods = oracle.podsWith(fam);
      for (const from of pods) {
        for (const to of pods) {
          if (from === to) continue;
          pairs++;
          const key = `${from.name}>${to.name}`;
          const want = oracle.allowed(from.pod, from.ip, to.pod, to.ip, probe) ? 'allow' : 'deny';
          const got = actual.get(key);
          if (got?.verdict !== want) {
            const d = got?.detail;
            mismatches.push({
              seed,
              probe: `${probe.protocol}/${probe.port} IPv${fam}`,
              pair: key,
              oracle: want,
              project: got?.verdict ?? 'missing',
              why: d
                ? `egress ${d.egress.verdict} (${d.egress.tier} ${d.egress.policy ?? ''} ${d.egress.rule ?? ''}), ` +
                  `ingress ${d.ingress.verdict} (${d.ingress.tier} ${d.ingress.policy ?? ''} ${d.ingress.rule ?? ''})`
                : '',
            });
          }
        }
      }
      if (actual.size !== pods.length * (pods.length - 1)) {
        errors.push(`IPv${fam}: project has ${actual.size} pairs, oracle ${pods.length * (pods.length - 1)}`);
      }
    }
  }
  const dump = process.env.CNP_ORACLE_DUMP;
  if (dump && (mismatches.length || errors.length)) {
    fs.mkdirSync(dump, { recursive: true });
    fs.writeFileSync(path.join(dump, `seed-${seed}.yaml`), text);
  }
  return { mismatches, pairs, errors };
}

test('ClusterNetworkPolicy + NetworkPolicy: the project agrees with the independent oracle', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cnp-oracle-'));
  try {
    const only = process.env.CNP_ORACLE_SEED;
    const seeds = only ? [Number(only)] : Array.from({ length: CLUSTERS }, (_, i) => i + 1);
    let pairs = 0;
    const bad: string[] = [];
    for (const seed of seeds) {
      const r = check(seed, dir);
      pairs += r.pairs;
      for (const e of r.errors) bad.push(`seed ${seed}: ${e}`);
      for (const m of r.mismatches.slice(0, 3)) {
        bad.push(`seed ${seed} ${m.probe} ${m.pair}: oracle ${m.oracle}, project ${m.project}: ${m.why}`);
      }
      if (bad.length >= 20) break;
    }
    t.deepEqual(bad, []);
    t.true(pairs >= seeds.length * 20, `only ${pairs} pod pairs were compared`);
    t.log(`${seeds.length} clusters, ${pairs} pod pairs x probes compared`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// Hand-written answers from the API text, for the oracle and the project alike: evidence
// that the oracle reads the spec as intended, not only that the two agree.
const BASE: RawObject[] = [
  { kind: 'Namespace', metadata: { name: 'a', labels: { team: 'red' } } },
  { kind: 'Namespace', metadata: { name: 'b' } },
  {
    kind: 'Pod',
    metadata: { name: 'web', namespace: 'a', labels: { app: 'web' } },
    spec: { containers: [{ name: 'c', ports: [{ name: 'http', containerPort: 8080 }] }] },
    status: { podIPs: [{ ip: '10.244.0.10' }] },
  },
  {
    kind: 'Pod',
    metadata: { name: 'db', namespace: 'b', labels: { app: 'db' } },
    spec: { containers: [{ name: 'c' }] },
    status: { podIPs: [{ ip: '10.244.1.10' }] },
  },
];
const toWeb: CnpPeer[] = [{ pods: { podSelector: { matchLabels: { app: 'web' } } } }];
const fromDb: CnpPeer[] = [{ namespaces: { matchLabels: { 'kubernetes.io/metadata.name': 'b' } } }];
const webSubject: CnpPeer = { namespaces: { matchLabels: { team: 'red' } } };
function cnp(name: string, tier: 'Admin' | 'Baseline', priority: number, ingress: CnpRule[]): RawCnp {
  return { kind: 'ClusterNetworkPolicy', metadata: { name }, spec: { tier, priority, subject: webSubject, ingress } };
}
const denyAllToWeb: RawNp = {
  kind: 'NetworkPolicy',
  metadata: { name: 'deny', namespace: 'a' },
  spec: { podSelector: {}, policyTypes: ['Ingress'] },
};
const allowDbToWeb: RawNp = {
  kind: 'NetworkPolicy',
  metadata: { name: 'allow-db', namespace: 'a' },
  spec: { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {} }] }] },
};
const TCP8080: Packet = { protocol: 'TCP', port: 8080 };

const DIRECTED: { name: string; objects: RawObject[]; probe?: Packet; want: 'allow' | 'deny' }[] = [
  {
    name: 'Admin Pass hands over to NetworkPolicy, which denies',
    objects: [cnp('pass', 'Admin', 1, [{ action: 'Pass', from: fromDb }]), denyAllToWeb],
    want: 'deny',
  },
  {
    name: 'Admin Accept is final: NetworkPolicy is not consulted',
    objects: [cnp('accept', 'Admin', 1, [{ action: 'Accept', from: fromDb }]), denyAllToWeb],
    want: 'allow',
  },
  {
    name: 'Admin Pass with no NetworkPolicy selecting the pod reaches Baseline Deny',
    objects: [
      cnp('pass', 'Admin', 1, [{ action: 'Pass', from: fromDb }]),
      cnp('base', 'Baseline', 0, [{ action: 'Deny', from: fromDb }]),
    ],
    want: 'deny',
  },
  {
    name: 'a pod selected by a NetworkPolicy never reaches Baseline',
    objects: [allowDbToWeb, cnp('base', 'Baseline', 0, [{ action: 'Deny', from: fromDb }])],
    want: 'allow',
  },
  {
    name: 'Baseline Pass ends at the default allow, past a later Baseline Deny',
    objects: [
      cnp('pass', 'Baseline', 3, [{ action: 'Pass', from: fromDb }]),
      cnp('deny', 'Baseline', 4, [{ action: 'Deny', from: fromDb }]),
    ],
    want: 'allow',
  },
  {
    name: 'the lower priority number goes first',
    objects: [
      cnp('deny', 'Admin', 10, [{ action: 'Deny', from: fromDb }]),
      cnp('accept', 'Admin', 5, [{ action: 'Accept', from: fromDb }]),
      denyAllToWeb,
    ],
    want: 'allow',
  },
  {
    name: 'rule order within a policy: the first matching rule decides',
    objects: [
      cnp('both', 'Admin', 0, [
        { action: 'Deny', from: fromDb },
        { action: 'Accept', from: fromDb },
      ]),
    ],
    want: 'deny',
  },
  {
    name: 'a range includes its end',
    objects: [
      cnp('range', 'Admin', 0, [
        {
          action: 'Deny',
          from: fromDb,
          protocols: [{ tcp: { destinationPort: { range: { start: 8000, end: 8080 } } } }],
        },
      ]),
    ],
    want: 'deny',
  },
  {
    name: 'a named port is the destination pod container port of that name',
    objects: [
      cnp('named', 'Admin', 0, [{ action: 'Deny', from: fromDb, protocols: [{ destinationNamedPort: 'http' }] }]),
    ],
    want: 'deny',
  },
  {
    name: 'a named port is the container port protocol only (TCP "http", probe UDP)',
    objects: [
      cnp('named', 'Admin', 0, [{ action: 'Deny', from: fromDb, protocols: [{ destinationNamedPort: 'http' }] }]),
    ],
    probe: { protocol: 'UDP', port: 8080 },
    want: 'allow',
  },
  {
    name: 'an egress Accept leaves the destination ingress to its own policies',
    objects: [
      {
        kind: 'ClusterNetworkPolicy',
        metadata: { name: 'egress' },
        spec: { tier: 'Admin', priority: 0, subject: fromDb[0], egress: [{ action: 'Accept', to: toWeb }] },
      },
      denyAllToWeb,
    ],
    want: 'deny',
  },
  {
    name: 'an SCTP rule does not match TCP',
    objects: [cnp('sctp', 'Admin', 0, [{ action: 'Deny', from: fromDb, protocols: [{ sctp: {} }] }])],
    want: 'allow',
  },
];

test('directed ClusterNetworkPolicy cases: the oracle and the project give the answer the API text gives', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cnp-directed-'));
  try {
    for (const c of DIRECTED) {
      const objects = [...BASE, ...c.objects];
      const text = toYaml(objects);
      fs.writeFileSync(path.join(dir, 'cluster.yaml'), text);
      const s = loadStateDir(dir);
      const probe = c.probe ?? TCP8080;
      const pair = podMatrix(s, { protocol: probe.protocol, port: probe.port }).find(
        (p) => p.from === 'b/db' && p.to === 'a/web',
      );
      const oracle = new Oracle(loadAll(text) as RawObject[]);
      const [web, db] = [BASE[2], BASE[3]] as RawPod[];
      const want = oracle.allowed(db, '10.244.1.10', web, '10.244.0.10', probe) ? 'allow' : 'deny';
      t.is(want, c.want, `oracle: ${c.name}`);
      t.is(pair?.verdict, c.want, `project: ${c.name}`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
