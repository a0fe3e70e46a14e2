// The agent's answer to tc changes behind its back (src/agent/hook-repairs) over a fake
// attacher: which events make a hook lost and a pass due, what settle() counts, and the
// move-ahead's once-a-second limit. The real kernel side is in test/e2e/hook-repair.
import test from 'ava';
import pino from 'pino';
import { Counter, Registry } from 'prom-client';
import { setTimeout as sleep } from 'node:timers/promises';
import { HookRepairs, MOVE_AHEAD_INTERVAL_MS, type RepairableHooks } from '../../src/agent/hook-repairs';
import { KnownHooks } from '../../src/agent/known-hooks';
import type { Attacher, EndpointRef } from '../../src/datapath/attach';
import type { TcDirection, TcHookEvent } from '../../src/datapath/native-api';

type State = 'none' | 'attached' | 'lost';

class FakeHooks implements RepairableHooks, Attacher {
  readonly state = new Map<string, State>();
  moves = 0;
  failMove = false;
  queries = 0;
  markedHook(ep: EndpointRef, dir: TcDirection): State {
    return this.state.get(`${ep.ifname}/${dir}`) ?? 'none';
  }
  moveAhead(ep: EndpointRef, dir: TcDirection): void {
    if (this.failMove) {
      this.state.set(`${ep.ifname}/${dir}`, 'lost');
      throw new Error('EBUSY');
    }
    this.moves++;
  }
  attached(ep: EndpointRef, dir: TcDirection): boolean {
    this.queries++;
    return this.markedHook(ep, dir) === 'attached';
  }
  attach(): void {}
  detach(): void {}
  list(): EndpointRef[] {
    return [];
  }
}

function setup(t: { teardown(fn: () => void): void }) {
  const hooks = new FakeHooks();
  const known = new KnownHooks(hooks);
  const registry = new Registry();
  const counter = new Counter({ name: 'r', help: 'r', labelNames: ['reason'], registers: [registry] });
  const due: string[] = [];
  const repairs = new HookRepairs(hooks, known, counter, pino({ level: 'silent' }), (r) => due.push(r));
  t.teardown(() => repairs.close());
  const count = async (reason: string): Promise<number> =>
    (await counter.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;
  return { hooks, known, repairs, due, count };
}

const ev = (type: TcHookEvent['type'], dirs: TcDirection[] = ['ingress']): TcHookEvent => ({
  type,
  ifindex: 7,
  ifname: 'veth7',
  dirs,
});
const EP = { ifindex: 7, ifname: 'veth7' };

test('a hook of ours gone: listed lost, the pass is due and asks the kernel; counted once back', async (t) => {
  const { hooks, known, repairs, due, count } = setup(t);
  hooks.state.set('veth7/ingress', 'attached');
  hooks.state.set('veth7/egress', 'attached');
  t.true(known.attached(EP, 'ingress'));
  const asked = hooks.queries;
  hooks.state.set('veth7/ingress', 'lost');
  hooks.state.set('veth7/egress', 'lost');
  repairs.onEvent(ev('qdisc-del', ['ingress', 'egress']));
  t.deepEqual(due, ['hook lost on veth7', 'hook lost on veth7']);
  t.deepEqual(
    repairs.list().map((h) => [h.ifname, h.dir, h.reason]),
    [
      ['veth7', 'ingress', 'qdisc-deleted'],
      ['veth7', 'egress', 'qdisc-deleted'],
    ],
  );
  t.true(repairs.isLost(7));
  t.false(known.attached(EP, 'ingress'), 'forgotten: the pass asks the kernel');
  t.true(hooks.queries > asked);

  repairs.settle(); // a pass that could not put them back
  t.is(repairs.list().length, 2);
  hooks.state.set('veth7/ingress', 'attached');
  hooks.state.set('veth7/egress', 'none'); // the endpoint no longer needs it
  repairs.settle();
  t.deepEqual(repairs.list(), []);
  t.false(repairs.isLost(7));
  t.is(await count('qdisc-deleted'), 1, 'only the hook put back is counted');
});

test('a deletion that took nothing of ours (the agent’s own detach, another owner’s filter) is no pass', (t) => {
  const { hooks, repairs, due } = setup(t);
  repairs.onEvent(ev('filter-del')); // no marker: not ours, or detached by the agent
  hooks.state.set('veth7/ingress', 'attached');
  repairs.onEvent(ev('filter-del')); // ours is still there
  t.deepEqual(due, []);
  t.deepEqual(repairs.list(), []);
});

test('a filter ahead of ours: moved at once, again no sooner than the interval; a failed move is a lost hook', async (t) => {
  const { hooks, repairs, due, count } = setup(t);
  hooks.state.set('veth7/ingress', 'attached');
  repairs.onEvent(ev('filter-ahead'));
  t.is(hooks.moves, 1);
  repairs.onEvent(ev('filter-ahead'));
  repairs.onEvent(ev('filter-ahead'));
  t.is(hooks.moves, 1, 'within the interval: waits');
  await sleep(MOVE_AHEAD_INTERVAL_MS + 100);
  t.is(hooks.moves, 2, 'one more move once the interval passed');
  t.is(await count('filter-ahead'), 2);
  repairs.onEvent(ev('filter-ahead', ['egress'])); // not ours there
  t.is(hooks.moves, 2);

  await sleep(MOVE_AHEAD_INTERVAL_MS);
  hooks.failMove = true;
  repairs.onEvent(ev('filter-ahead'));
  t.deepEqual(due, ['hook lost on veth7']);
  t.like(repairs.list()[0], { dir: 'ingress', reason: 'filter-ahead' });
});
