// OverlayMap: a derived map reads, sizes and iterates as the Map its changes describe,
// whatever overlay it was derived from; a deleted root key that comes back is refused.
import test from 'ava';
import { OverlayMap } from '../../src/compile/overlay-map';
import { Rng } from '../helpers/rng';

type Edit = [number, string | undefined];

/** What a Map holds after the same edits (a replaced key keeps its place). */
function model(base: Map<number, string>, edits: Edit[]): Map<number, string> {
  const m = new Map(base);
  for (const [k, v] of edits) {
    if (v === undefined) m.delete(k);
    else m.set(k, v);
  }
  return m;
}

test('random edit chains: same entries, order, size and lookups as a Map', (t) => {
  const r = new Rng(5);
  let checked = 0;
  for (let round = 0; round < 50; round++) {
    const root = new Map(Array.from({ length: 20 }, (_, i) => [i, `v${i}`] as [number, string]));
    let expected = new Map(root);
    let current: Map<number, string> = root;
    for (let step = 0; step < 20; step++) {
      const edits: Edit[] = Array.from({ length: r.int(1, 4) }, () => [
        r.int(0, 40),
        r.int(0, 2) === 0 ? undefined : `s${step}.${r.int(0, 9)}`,
      ]);
      const next = OverlayMap.derive(current, edits);
      // Refused only when a deleted root key would come back.
      const resurrects = edits.some(([k, v], i) => {
        const before = model(expected, edits.slice(0, i));
        return v !== undefined && !before.has(k) && root.has(k);
      });
      if (!next) {
        t.true(resurrects);
        continue;
      }
      t.false(resurrects);
      expected = model(expected, edits);
      t.deepEqual([...next], [...expected]);
      t.deepEqual([...next.keys()], [...expected.keys()]);
      t.deepEqual([...next.values()], [...expected.values()]);
      const seen: [number, string][] = [];
      next.forEach((v, k) => seen.push([k, v]));
      t.deepEqual(seen, [...expected]);
      t.is(next.size, expected.size);
      for (let k = 0; k <= 40; k++) {
        t.is(next.get(k), expected.get(k));
        t.is(next.has(k), expected.has(k));
      }
      current = next;
      checked++;
    }
  }
  t.true(checked > 300, `${checked} overlays checked`);
});

test('read-only: writes throw', (t) => {
  const m = OverlayMap.derive(new Map([[1, 'a']]), [[2, 'b']])!;
  t.throws(() => m.set());
  t.throws(() => m.delete());
  t.throws(() => m.clear());
});
