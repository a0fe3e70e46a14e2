// The interface-name globs of hostInterfaces (src/endpoints/glob): shell semantics.
import test from 'ava';
import { matchesGlob } from '../../src/endpoints/glob';
import { matchesAny } from '../../src/endpoints/discover';

const cases: [name: string, pattern: string, match: boolean][] = [
  ['eth0', 'eth*', true],
  ['eth', 'eth*', true],
  ['Eth0', 'eth*', false],
  ['veth1', 'eth*', false],
  ['eth0', 'eth?', true],
  ['eth10', 'eth?', false],
  ['bond0.100', 'bond*.1??', true],
  ['bond0x100', 'bond0.100', false], // '.' is literal
  ['ens3', 'e[nt]s[0-9]', true],
  ['ets3', 'e[!n]s3', true],
  ['ens3', 'e[!n]s3', false],
  ['ens3', 'e[^n]s3', false],
  ['a-b', 'a[-x]b', true],
  ['a]b', 'a[]]b', true],
  ['a[b', 'a[b', true], // unclosed bracket: literal
  ['a*', 'a\\*', true],
  ['ab', 'a\\*', false],
  ['a(b)', 'a(b)', true],
  ['x', '', false],
];

for (const [name, pattern, match] of cases) {
  test(`"${name}" ${match ? 'matches' : 'does not match'} "${pattern}"`, (t) => {
    t.is(matchesGlob(name, pattern), match);
  });
}

test('matchesAny: any of the patterns', (t) => {
  t.true(matchesAny('eth1', ['bond*', 'eth[0-3]']));
  t.false(matchesAny('eth4', ['bond*', 'eth[0-3]']));
  t.false(matchesAny('eth0', []));
});
