// Rule bitmaps and port-range prefixes: the compiler's encodings of rule sets and port
// ranges into nf_bitmap values and nf_ports trie prefixes.
import test from 'ava';
import { bitmapFrom, bitmapIndices, bitmapOr, bitmapTest } from '../../src/compile/bitmap';
import { portRangePrefixes } from '../../src/compile/port-prefix';
import { LAYOUT } from '../../src/wire/layout';

test('bitmaps: bit i of word i/64', (t) => {
  const b = bitmapFrom([0, 63, 64, 200, 255]);
  t.is(b.length, LAYOUT.nf_bitmap.size);
  t.is(b.readBigUInt64LE(0), (1n << 63n) | 1n);
  t.is(b.readBigUInt64LE(8), 1n);
  t.is(b.readBigUInt64LE(24), (1n << 63n) | (1n << 8n));
  t.deepEqual(bitmapIndices(b), [0, 63, 64, 200, 255]);
  t.true(bitmapTest(b, 200));
  t.false(bitmapTest(b, 201));
  t.deepEqual(bitmapIndices(bitmapOr(bitmapFrom([1]), bitmapFrom([2]))), [1, 2]);
  t.throws(() => bitmapFrom([256]), { message: /^bitmap: rule index 256 out of range 0\.\.255/ });
  // chunk 2 holds rules 512..767: the same bits, global indices
  const c2 = bitmapFrom([512, 575, 576, 712, 767], 2);
  t.true(c2.equals(b), 'bit i of chunk c = rule c * 256 + i');
  t.deepEqual(bitmapIndices(c2, 2), [512, 575, 576, 712, 767]);
  t.throws(() => bitmapFrom([256], 2), { message: /^bitmap: rule index 256 out of range 512\.\.767 \(chunk 2\)/ });
});

test('port ranges decompose into aligned, contiguous prefixes', (t) => {
  t.deepEqual(portRangePrefixes(80, 80), [{ port: 80, portBits: 16 }]);
  t.deepEqual(portRangePrefixes(0, 65535), [{ port: 0, portBits: 0 }]);
  for (const [a, b] of [
    [1000, 2000],
    [1, 65534],
    [32767, 32769],
    [5, 6],
  ]) {
    const covered = portRangePrefixes(a, b).flatMap((p) => {
      const size = 2 ** (16 - p.portBits);
      t.is(p.port % size, 0, 'aligned');
      return [p.port, p.port + size - 1];
    });
    t.is(covered[0], a);
    t.is(covered[covered.length - 1], b);
    for (let i = 1; i + 1 < covered.length; i += 2) t.is(covered[i] + 1, covered[i + 1], 'contiguous');
  }
  t.throws(() => portRangePrefixes(10, 9), { message: /^split port range 10-9/ });
});
