import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { PassRequests } from '../../src/agent/pass-requests';

function passes(): { p: PassRequests; runs: string[] } {
  const runs: string[] = [];
  return { p: new PassRequests((r) => runs.push(r)), runs };
}

test('requests of one turn share one pass, under the first reason', async (t) => {
  const { p, runs } = passes();
  p.request('link del a');
  p.request('link del b');
  p.request('link new c');
  t.deepEqual(runs, [], 'not run inside the caller');
  await sleep(5);
  t.deepEqual(runs, ['link del a']);
});

test('timers due together share one pass', async (t) => {
  const { p, runs } = passes();
  for (const r of ['a', 'b', 'c']) setTimeout(() => p.request(r), 0);
  await sleep(20);
  t.deepEqual(runs, ['a']);
});

test('a request after the pass started gets a pass of its own', async (t) => {
  const runs: string[] = [];
  const p: PassRequests = new PassRequests((r) => {
    runs.push(r);
    if (r === 'first') p.request('during');
  });
  p.request('first');
  await sleep(10);
  t.deepEqual(runs, ['first', 'during']);
  p.request('later');
  await sleep(10);
  t.deepEqual(runs, ['first', 'during', 'later']);
});
