// Random seeded clusters of ClusterNetworkPolicies (both tiers, Accept/Deny/Pass) and
// NetworkPolicies, written as YAML, loaded by the project's directory loader and judged
// pod pair by pod pair against an independent oracle written from the upstream API text
// (test/helpers/cnp-oracle.ts, which shares no code with src/). A failure names the seed:
// CNP_ORACLE_SEED=<seed> runs that one alone, CNP_ORACLE_DUMP=<dir> keeps its YAML.
import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadAll } from 'js-yaml';
import { loadStateDir } from '../../src/sources/directory';
import { podMatrix } from '../../src/reference/matrix';
import { Oracle, type RawObject } from '../helpers/cnp-oracle';
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
    t.true(only !== undefined || pairs > 100_000, `only ${pairs} pod pairs were compared`);
    t.log(`${seeds.length} clusters, ${pairs} pod pairs x probes compared`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
