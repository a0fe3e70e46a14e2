import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { LinkFollowUps } from '../../src/agent/link-follow-ups';

const DELAYS = [0, 30, 60];
const settle = (): Promise<unknown> => sleep(120);

function followUps(): { f: LinkFollowUps; runs: string[] } {
  const runs: string[] = [];
  return { f: new LinkFollowUps((r) => runs.push(r), DELAYS), runs };
}

test('a link no pass has settled gets every follow-up', async (t) => {
  const { f, runs } = followUps();
  f.schedule('link new a', 'a');
  await settle();
  t.deepEqual(runs, ['link new a', 'link new a', 'link new a']);
});

test('after a pass that started after the event and enforced the link, follow-ups stop', async (t) => {
  const { f, runs } = followUps();
  f.schedule('link new a', 'a');
  await sleep(5);
  f.passed(performance.now(), new Set(['a', 'eth0']), new Set(['a']));
  await settle();
  t.deepEqual(runs, ['link new a']);
});

test('a link the pass did not find (gone, or moved into a pod namespace) is settled too', async (t) => {
  const { f, runs } = followUps();
  f.schedule('link new peer', 'peer');
  await sleep(5);
  f.passed(performance.now(), new Set(['eth0']), new Set());
  await settle();
  t.is(runs.length, 1);
});

test('a link seen but not enforced (no pod route yet) keeps its follow-ups', async (t) => {
  const { f, runs } = followUps();
  f.schedule('link new a', 'a');
  await sleep(5);
  f.passed(performance.now(), new Set(['a']), new Set());
  await settle();
  t.is(runs.length, 3);
});

test('a pass that started before the event settles nothing', async (t) => {
  const { f, runs } = followUps();
  const before = performance.now();
  await sleep(2);
  f.schedule('link new a', 'a');
  f.passed(before, new Set(['a']), new Set(['a']));
  await settle();
  t.is(runs.length, 3);
});

test('lost events (no link named) always get every follow-up', async (t) => {
  const { f, runs } = followUps();
  f.schedule('link events lost');
  await sleep(5);
  f.passed(performance.now(), new Set(), new Set());
  await settle();
  t.is(runs.length, 3);
});
