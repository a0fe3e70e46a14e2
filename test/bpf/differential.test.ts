// The compiled program (real BPF, BPF_PROG_TEST_RUN) against the reference on
// thousands of random clusters and packets: each direction's verdict, and the tier,
// policy and rule that decided it, must agree. Some clusters carry hundreds of rules
// (tables of 2 or 3 chunks): they get more packets.
// Reproducible: a failure names the seed; DIFF_SEED=<n> reruns that one snapshot.
import test from 'ava';
import { native } from '../../src/datapath/native';
import { evaluate } from '../../src/reference/evaluate';
import { BpfEngine } from '../../src/trace/bpf-engine';
import { BULK, randomPackets, randomSnapshot } from '../helpers/random-snapshot';
import { objectPath } from './objects';

const SNAPSHOTS = Number(process.env.DIFF_SNAPSHOTS ?? 1500);
const PACKETS = 12;

test('bpf engine and reference agree on random snapshots and packets', (t) => {
  const engine = BpfEngine.open(native, objectPath('netfence'));
  const seeds = process.env.DIFF_SEED
    ? [Number(process.env.DIFF_SEED)]
    : Array.from({ length: SNAPSHOTS }, (_, i) => i + 1);
  let probes = 0;
  let denies = 0;
  const tracked = { established: 0, related: 0 };
  let bulk = 0;
  const failures: string[] = [];
  try {
    for (const seed of seeds) {
      const s = randomSnapshot(seed);
      const errors = engine.load(s);
      if (errors.length) failures.push(`seed ${seed}: compile errors: ${errors.join('; ')}`);
      const isBulk = s.policies.some((p) => p.ref.name.startsWith(BULK));
      for (const pkt of randomPackets(s, seed, isBulk ? 4 * PACKETS : PACKETS)) {
        if (isBulk) bulk++;
        const want = evaluate(s, pkt);
        const got = engine.evaluate(pkt);
        probes++;
        if (want.verdict === 'deny') denies++;
        if (pkt.established) tracked.established++;
        if (pkt.related) tracked.related++;
        for (const dir of ['egress', 'ingress'] as const) {
          // Verdict, and which tier, policy and rule decided it.
          if (JSON.stringify(got[dir]) !== JSON.stringify(want[dir])) {
            failures.push(
              `seed ${seed}: ${pkt.src} -> ${pkt.dst} ${pkt.dstPort}/${pkt.protocol} ${dir}: ` +
                `bpf ${JSON.stringify(got[dir])}, reference ${JSON.stringify(want[dir])}`,
            );
          }
        }
      }
      if (failures.length >= 10) break;
    }
  } finally {
    engine.close();
  }
  t.deepEqual(failures, []);
  // The generator must exercise both outcomes, or agreement proves little.
  t.true(denies > probes / 20, `${denies} denies of ${probes} probes`);
  t.true(probes - denies > probes / 5, `${probes - denies} allows of ${probes} probes`);
  t.true(
    tracked.established > probes / 20 && tracked.related > probes / 100,
    `conntrack state: ${JSON.stringify(tracked)}`,
  );
  if (!process.env.DIFF_SEED) t.true(bulk > probes / 20, `${bulk} probes on clusters with hundreds of rules`);
  t.log(
    `${seeds.length} snapshots, ${probes} probes, ${denies} denied, ${tracked.established} established, ${tracked.related} related, ${bulk} on clusters with hundreds of rules`,
  );
});
