import test from 'ava';
import type { LinkInfo } from '../../src/datapath/native-api';
import { PeerMacs } from '../../src/endpoints/peer-macs';

const veth = (ifindex: number, linkIfindex: number, linkNetnsid = 3): LinkInfo => ({
  ifindex,
  name: `v${ifindex}`,
  kind: 'veth',
  mac: '02:00:00:00:00:01',
  up: true,
  masterIfindex: 0,
  linkIfindex,
  linkNetnsid,
});

/** An ask() that counts its calls and answers from `macs` (by host ifindex). */
function asker(macs: Map<number, string | null>): { ask: (l: LinkInfo) => string | null; calls: number[] } {
  const calls: number[] = [];
  return {
    calls,
    ask: (l) => {
      calls.push(l.ifindex);
      return macs.get(l.ifindex) ?? null;
    },
  };
}

test('a peer MAC is asked once per veth until forget(); a peer not found is asked again', (t) => {
  const macs = new Map<number, string | null>([[10, 'aa:aa:aa:aa:aa:01']]);
  const a = asker(macs);
  const p = new PeerMacs();
  t.is(p.lookup(veth(10, 2), a.ask), 'aa:aa:aa:aa:aa:01');
  t.is(p.lookup(veth(10, 2), a.ask), 'aa:aa:aa:aa:aa:01');
  t.is(p.lookup(veth(11, 2), a.ask), null);
  t.is(p.lookup(veth(11, 2), a.ask), null);
  t.deepEqual(a.calls, [10, 11, 11]);

  macs.set(10, 'bb:bb:bb:bb:bb:02'); // the pod changed its MAC: seen after forget()
  t.is(p.lookup(veth(10, 2), a.ask), 'aa:aa:aa:aa:aa:01');
  p.forget();
  t.is(p.lookup(veth(10, 2), a.ask), 'bb:bb:bb:bb:bb:02');
  t.deepEqual(a.calls, [10, 11, 11, 10]);
});

test('a veth whose peer changed, or that left the view, is asked again', (t) => {
  const macs = new Map<number, string | null>([[10, 'aa:aa:aa:aa:aa:01']]);
  const a = asker(macs);
  const p = new PeerMacs();
  p.lookup(veth(10, 2), a.ask);
  p.lookup(veth(10, 5), a.ask); // another peer ifindex
  p.lookup(veth(10, 5, 4), a.ask); // another peer namespace
  t.deepEqual(a.calls, [10, 10, 10]);
  p.keepOnly([veth(10, 5, 4)]);
  p.lookup(veth(10, 5, 4), a.ask);
  p.lookup(veth(10, 2), a.ask);
  t.deepEqual(a.calls, [10, 10, 10, 10], 'the one still in the view is remembered, the others were dropped');
});
