// The NetworkPolicy truth tables (test/fixtures/netpol-truth, checked against the
// upstream expectations by test/unit/netpol-truth.test.ts through the reference) must
// come out the same from the compiled program: every pair, both families, every probe.
import test from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { native } from '../../src/datapath/native';
import type { L4Protocol } from '../../src/model/rules';
import { evaluate } from '../../src/reference/evaluate';
import { loadStateDir } from '../../src/sources/directory';
import { BpfEngine } from '../../src/trace/bpf-engine';
import { matrixPairs } from '../../src/trace/probe';
import { objectPath } from './objects';

const DIR = path.resolve(__dirname, '../../../test/fixtures/netpol-truth');
const cases = fs.readdirSync(DIR).filter((d) => fs.statSync(path.join(DIR, d)).isDirectory());

test('truth tables: the bpf engine agrees with the reference on every pair', (t) => {
  t.true(cases.length >= 15);
  const engine = BpfEngine.open(native, objectPath('netfence'));
  try {
    for (const name of cases) {
      const s = loadStateDir(path.join(DIR, name, 'state'));
      t.deepEqual(engine.load(s), [], name);
      const { probes } = parse(fs.readFileSync(path.join(DIR, name, 'expected.yaml'), 'utf8')) as {
        probes: { port: number; protocol: L4Protocol }[];
      };
      for (const probe of probes) {
        for (const family of [4, 6] as const) {
          const pairs = matrixPairs(s, family);
          t.is(pairs.length, 72, `${name}: 9x9 minus loopback`);
          const wrong = pairs.flatMap((p) => {
            const pkt = { src: p.src, dst: p.dst, protocol: probe.protocol, dstPort: probe.port };
            const [got, want] = [engine.evaluate(pkt), evaluate(s, pkt)];
            const same = got.egress.verdict === want.egress.verdict && got.ingress.verdict === want.ingress.verdict;
            return same ? [] : [`${p.from}>${p.to}: bpf ${got.verdict}, reference ${want.verdict}`];
          });
          t.deepEqual(wrong, [], `${name} ${probe.port}/${probe.protocol} IPv${family}`);
        }
      }
    }
  } finally {
    engine.close();
  }
});
