import test from 'ava';
import { statsSlots } from '../../src/compile/stats-slots';
import { NF_EP_SLOTS } from '../../src/wire/abi';

test('a slot is the ifindex modulo the usable slots, probing upward in ifindex order', (t) => {
  const usable = NF_EP_SLOTS - 1;
  const s = statsSlots([5, 5 + usable, 4, 5 + 2 * usable, usable]);
  t.is(s.get(4), 5);
  t.is(s.get(5), 6);
  t.is(s.get(5 + usable), 7, 'collides with 5: the next free slot');
  t.is(s.get(5 + 2 * usable), 8);
  t.is(s.get(usable), 1, 'never slot 0');
  t.deepEqual(
    statsSlots([5 + usable, 5]),
    new Map([
      [5, 6],
      [5 + usable, 7],
    ]),
    'independent of the input order',
  );
});

test('slots are distinct and in range; past the last free one an endpoint is not counted (0)', (t) => {
  const ifindexes = Array.from({ length: NF_EP_SLOTS + 10 }, (_, i) => 3 + i * 7);
  const s = statsSlots(ifindexes);
  const given = [...s.values()].filter((x) => x !== 0);
  t.is(given.length, NF_EP_SLOTS - 1);
  t.is(new Set(given).size, given.length, 'distinct');
  t.true(given.every((x) => x >= 1 && x < NF_EP_SLOTS));
  t.is([...s.values()].filter((x) => x === 0).length, 11);
  t.is(s.get(ifindexes.at(-1)!), 0, 'the highest ifindexes go without');
});

test('an endpoint keeps its slot when others come and go unless it lost a collision', (t) => {
  const before = statsSlots([10, 20, 30]);
  const after = statsSlots([10, 30, 40, 50]);
  t.is(after.get(10), before.get(10));
  t.is(after.get(30), before.get(30));
});
