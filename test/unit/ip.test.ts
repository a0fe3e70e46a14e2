// IP parsing (src/model/ip.ts): a dotted quad is read without BigInt or regex, so its rules
// are checked here against their plain statement (four decimal parts, 0-255, no leading
// zero), over the edge cases and a seeded sweep of near-miss spellings.
import test from 'ava';
import { canonicalIp, parseCidr, parseIp } from '../../src/model/ip';

/** The dotted-quad rule as a regex: what the hand-written parser must agree with. */
function reference(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255)) return undefined;
  return parts.reduce((v, p) => (v << 8n) | BigInt(p), 0n);
}

const EDGES = [
  '0.0.0.0',
  '255.255.255.255',
  '10.65.134.130',
  '1.2.3.4',
  '256.1.1.1',
  '1.2.3.256',
  '01.2.3.4',
  '1.2.3.00',
  '1.2.3',
  '1.2.3.4.5',
  '1..3.4',
  '.1.2.3',
  '1.2.3.',
  '',
  ' 1.2.3.4',
  '1.2.3.4 ',
  '1.2.3.4/32',
  '+1.2.3.4',
  '1.2.3.0x1',
  '1000.2.3.4',
  '١.2.3.4',
];

test('a dotted quad parses exactly as the rule says, and is its own canonical text', (t) => {
  let seed = 19;
  const rand = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  // Parts valid and not, in 3 to 5 of them.
  const PARTS = ['0', '00', '01', '7', '10', '99', '100', '199', '255', '256', '999', '1000', '', 'a', '-1'];
  const swept = Array.from({ length: 20_000 }, () =>
    Array.from({ length: 3 + rand(3) }, () => PARTS[rand(PARTS.length)]).join('.'),
  );
  let valid = 0;
  for (const s of [...EDGES, ...swept]) {
    const want = reference(s);
    const got = parseIp(s);
    t.is(got?.family === 4 ? got.value : undefined, want, s);
    if (want !== undefined) {
      valid++;
      t.is(canonicalIp(s), s, `${s} is canonical`);
    }
  }
  t.true(valid > 200, `the sweep hits valid addresses too (${valid})`);
});

test('canonicalIp: IPv6 in RFC 5952 form, embedded IPv4 checked, non-addresses undefined', (t) => {
  t.is(canonicalIp('2001:DB8:0:0:0:0:0:1'), '2001:db8::1');
  t.is(canonicalIp('::ffff:10.0.0.1'), '::ffff:a00:1');
  t.is(canonicalIp('::ffff:10.0.0.01'), undefined);
  t.is(canonicalIp('10.0.0.300'), undefined);
  t.is(canonicalIp('pod-1'), undefined);
});

test('parseCidr: host bits cleared, prefix checked', (t) => {
  t.deepEqual(parseCidr('10.1.2.3/8'), { family: 4, prefix: 8, value: 10n << 24n });
  t.is(parseCidr('10.1.2.3/33'), undefined);
  t.is(parseCidr('10.1.2.03/8'), undefined);
});
