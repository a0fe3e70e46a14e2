import test from 'ava';
import { LatestWrite } from '../../src/agent/latest-write';

test('one write at a time; while one runs only the newest value waits', async (t) => {
  const written: number[] = [];
  let release: () => void = () => undefined;
  let running = 0;
  const w = new LatestWrite<number>(async (v) => {
    running += 1;
    t.is(running, 1, 'never two writes at once');
    await new Promise<void>((r) => (release = r));
    written.push(v);
    running -= 1;
  });
  w.queue(1);
  await new Promise((r) => setImmediate(r));
  w.queue(2);
  w.queue(3); // replaces 2 before its turn
  release();
  await new Promise((r) => setImmediate(r));
  release();
  await new Promise((r) => setImmediate(r));
  t.deepEqual(written, [1, 3]);
  w.queue(4);
  await new Promise((r) => setImmediate(r));
  release();
  await new Promise((r) => setImmediate(r));
  t.deepEqual(written, [1, 3, 4], 'an idle writer writes at once');
});
