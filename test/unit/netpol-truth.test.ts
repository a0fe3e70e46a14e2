// Runs the reference evaluator over the NetworkPolicy truth tables translated from the
// upstream e2e suite (test/fixtures/netpol-truth/<case>/{state/,expected.yaml}).
import test from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { loadStateDir } from '../../src/sources/directory';
import { podMatrix } from '../../src/reference/matrix';
import type { L4Protocol } from '../../src/model/rules';

const DIR = path.resolve(__dirname, '../../../test/fixtures/netpol-truth');

interface Probe {
  port: number;
  protocol: L4Protocol;
  matrix: string;
}

/** "from>to" -> allow, from the text table (. allow, X deny, - not probed). */
export function parseMatrix(text: string): Map<string, boolean> {
  const [header, ...rows] = text
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/));
  const out = new Map<string, boolean>();
  for (const [from, ...cells] of rows) {
    cells.forEach((c, i) => {
      if (c !== '-') out.set(`${from}>${header[i + 1]}`, c === '.');
    });
  }
  return out;
}

const cases = fs.readdirSync(DIR).filter((d) => fs.statSync(path.join(DIR, d)).isDirectory());

test('there are truth tables to check', (t) => {
  t.true(cases.length >= 15);
});

for (const name of cases) {
  test(`truth table: ${name}`, (t) => {
    const s = loadStateDir(path.join(DIR, name, 'state'));
    t.deepEqual(s.errors, []);
    const { probes } = parse(fs.readFileSync(path.join(DIR, name, 'expected.yaml'), 'utf8')) as { probes: Probe[] };
    for (const probe of probes) {
      const expected = parseMatrix(probe.matrix);
      t.is(expected.size, 72, `${probe.port}/${probe.protocol}: 9x9 minus loopback`);
      // ipBlock cases name IPv4 CIDRs: over IPv6 they match nothing, so only IPv4 there.
      for (const family of name.startsWith('ipblock') ? ([4] as const) : ([4, 6] as const)) {
        const actual = new Map(
          podMatrix(s, { protocol: probe.protocol, port: probe.port, family }).map((p) => [
            `${p.from}>${p.to}`,
            p.verdict === 'allow',
          ]),
        );
        const wrong = [...expected]
          .filter(([k, v]) => actual.get(k) !== v)
          .map(([k, v]) => `${k} want ${v ? 'allow' : 'deny'}`);
        t.deepEqual(wrong, [], `${probe.port}/${probe.protocol} IPv${family}`);
      }
    }
  });
}
