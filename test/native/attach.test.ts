// tc (TCX and clsact) and XDP attach on a real veth pair: this process moves into a
// private netns (A) and talks to a named one (B); ping across the pair shows the
// attached program really drops.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { native } from '../../src/datapath/native';
import type { BpfObjectHandle } from '../../src/datapath/native-api';
import { fixtureObject, lpmKey, netnsAdd, pinDir, run, status, throwsNative, u32 } from './helpers';

const TC_ACT_SHOT = 2;
const XDP_FLAGS_UPDATE_IF_NOEXIST = 1;

let peerNs = { name: '', del: (): void => undefined };
let pairs = 0;

test.before(() => {
  native.unshareNet(); // private netns A: gone with this process
  run('ip', ['link', 'set', 'lo', 'up']);
  peerNs = netnsAdd('nf-nt-att');
});
test.after.always(() => peerNs.del());

interface Pair {
  ifindex: number;
  name: string;
  addr: string; // this side (netns A)
  peerAddr: string; // netns B
}

/** A veth pair A<->B with addresses 10.99.<n>.1/.2, both up. */
function vethPair(): Pair {
  pairs += 1;
  const name = `nfa${pairs}`;
  const peer = `nfb${pairs}`;
  const addr = `10.99.${pairs}.1`;
  const peerAddr = `10.99.${pairs}.2`;
  run('ip', ['link', 'add', name, 'type', 'veth', 'peer', 'name', peer, 'netns', peerNs.name]);
  run('ip', ['addr', 'add', `${addr}/24`, 'dev', name]);
  run('ip', ['link', 'set', name, 'up']);
  run('ip', ['-n', peerNs.name, 'addr', 'add', `${peerAddr}/24`, 'dev', peer]);
  run('ip', ['-n', peerNs.name, 'link', 'set', peer, 'up']);
  const [link] = JSON.parse(run('ip', ['-j', 'link', 'show', 'dev', name])) as { ifindex: number }[];
  return { ifindex: link.ifindex, name, addr, peerAddr };
}

/** Does a ping from netns B to this side's address get answered? */
const pingFromPeer = (p: Pair): boolean =>
  status('ip', ['netns', 'exec', peerNs.name, 'ping', '-c', '1', '-W', '1', p.addr]) === 0;

function load(t: { teardown(fn: () => void): void }): {
  h: BpfObjectHandle;
  prog: (n: string) => { fd: number; id: number };
} {
  const h = native.openObject(fixtureObject(), {});
  t.teardown(() => h.close());
  return { h, prog: (n) => h.programs().find((p) => p.name === n)! };
}

test.serial('TCX: attach pins a link, re-attach swaps the program in place, detach removes it', (t) => {
  const p = vethPair();
  const { prog } = load(t);
  const linkPin = path.join(pinDir(t), 'link-ingress');
  const [p1, p2] = [prog('nt_classify'), prog('nt_classify2')];

  t.deepEqual(native.tcAttach(p.ifindex, 'ingress', p1.fd, { linkPin }), { mode: 'tcx', linkPin });
  t.is(native.tcQuery(p.ifindex, 'ingress', { linkPin }), p1.id);
  const ino = fs.statSync(linkPin).ino;
  native.tcAttach(p.ifindex, 'ingress', p2.fd, { linkPin });
  t.is(native.tcQuery(p.ifindex, 'ingress', { linkPin }), p2.id);
  t.is(fs.statSync(linkPin).ino, ino, 'same link, updated in place');
  t.is(native.tcQuery(p.ifindex, 'egress', { linkPin: linkPin + '-egress' }), 0);

  native.tcDetach(p.ifindex, 'ingress', { linkPin });
  t.false(fs.existsSync(linkPin));
  t.is(native.tcQuery(p.ifindex, 'ingress', { linkPin }), 0);
  native.tcDetach(p.ifindex, 'ingress', { linkPin }); // idempotent
});

test.serial('TCX: a pin left by a deleted device is replaced, a live one for another device is refused', (t) => {
  const { prog } = load(t);
  const linkPin = path.join(pinDir(t), 'link');
  const fd = prog('nt_classify').fd;
  const gone = vethPair();
  native.tcAttach(gone.ifindex, 'ingress', fd, { linkPin });
  run('ip', ['link', 'del', gone.name]);
  throwsNative(t, () => native.tcQuery(gone.ifindex, 'ingress', { linkPin }), 'ENODEV', 'bpf_tc_query');
  t.true(fs.existsSync(linkPin), 'the defunct link is still pinned');

  const p = vethPair();
  t.is(native.tcAttach(p.ifindex, 'ingress', fd, { linkPin }).mode, 'tcx');
  t.is(native.tcQuery(p.ifindex, 'ingress', { linkPin }), prog('nt_classify').id);
  const other = vethPair();
  const e = throwsNative(t, () => native.tcAttach(other.ifindex, 'ingress', fd, { linkPin }), 'EEXIST', 'bpf_obj_get');
  t.regex(e.message, /holds another hook's link$/);
  native.tcDetach(p.ifindex, 'ingress', { linkPin });
  native.tcDetach(gone.ifindex, 'ingress', {}); // the device is gone: nothing left to remove
});

test.serial('clsact: forced attach, replace, detach only our filter, and the move to TCX', (t) => {
  const p = vethPair();
  const { prog } = load(t);
  const linkPin = path.join(pinDir(t), 'link-egress');
  const [p1, p2] = [prog('nt_classify'), prog('nt_classify2')];
  const filters = (): string => run('tc', ['filter', 'show', 'dev', p.name, 'egress']);

  t.deepEqual(native.tcAttach(p.ifindex, 'egress', p1.fd, { forceClsact: true }), { mode: 'clsact' });
  t.is(native.tcQuery(p.ifindex, 'egress', {}), p1.id);
  t.regex(filters(), /nt_classify.*direct-action/);
  native.tcAttach(p.ifindex, 'egress', p2.fd, { forceClsact: true });
  t.is(native.tcQuery(p.ifindex, 'egress', {}), p2.id);
  t.is(filters().match(/handle 0x4e46/g)?.length, 1, 'replaced, not added');

  native.tcAttach(p.ifindex, 'egress', p1.fd, { linkPin });
  t.is(filters().trim(), '', 'moving to TCX removed our clsact filter');
  t.is(native.tcQuery(p.ifindex, 'egress', { linkPin }), p1.id);
  t.deepEqual(native.tcAttach(p.ifindex, 'egress', p2.fd, { linkPin, forceClsact: true }), { mode: 'clsact' });
  t.false(fs.existsSync(linkPin), 'moving to clsact removed our TCX link');
  t.is(native.tcQuery(p.ifindex, 'egress', { linkPin }), p2.id);

  run('tc', ['filter', 'add', 'dev', p.name, 'egress', 'prio', '7', 'u32', 'match', 'u32', '0', '0']);
  native.tcDetach(p.ifindex, 'egress', { linkPin });
  t.is(native.tcQuery(p.ifindex, 'egress', {}), 0);
  t.regex(filters(), /pref 7 u32/, "someone else's filter stays");
  native.tcDetach(p.ifindex, 'egress', {});
});

test.serial('ping is dropped while the program drops and passes after detach (TCX, pinned past close)', (t) => {
  const p = vethPair();
  const { h, prog } = load(t);
  native.mapUpdate(h.maps().find((m) => m.name === 'nt_verdicts')!.fd, lpmKey(`${p.addr}/32`), u32(TC_ACT_SHOT));
  const linkPin = path.join(pinDir(t), 'link');
  const id = prog('nt_classify').id;

  t.true(pingFromPeer(p), 'baseline');
  native.tcAttach(p.ifindex, 'ingress', prog('nt_classify').fd, { linkPin });
  t.false(pingFromPeer(p), 'dropped by the program');
  h.close();
  t.is(native.tcQuery(p.ifindex, 'ingress', { linkPin }), id, 'the pinned link keeps the program after close');
  t.false(pingFromPeer(p), 'still dropped');
  native.tcDetach(p.ifindex, 'ingress', { linkPin });
  t.true(pingFromPeer(p), 'passes after detach');
});

test.serial('ping is dropped by a clsact filter and passes after detach', (t) => {
  const p = vethPair();
  const { h, prog } = load(t);
  native.mapUpdate(h.maps().find((m) => m.name === 'nt_verdicts')!.fd, lpmKey(`${p.peerAddr}/32`), u32(TC_ACT_SHOT));
  native.tcAttach(p.ifindex, 'egress', prog('nt_classify').fd, { forceClsact: true });
  t.false(pingFromPeer(p), 'replies to the peer dropped on egress');
  native.tcDetach(p.ifindex, 'egress', {});
  t.true(pingFromPeer(p));
});

test.serial('XDP attach and detach on a veth', (t) => {
  const p = vethPair();
  const { prog } = load(t);
  const xdpId = (): number | undefined =>
    (JSON.parse(run('ip', ['-j', 'link', 'show', 'dev', p.name])) as { xdp?: { prog?: { id: number } } }[])[0].xdp?.prog
      ?.id;
  native.xdpAttach(p.ifindex, prog('nt_xdp').fd, 0);
  t.is(xdpId(), prog('nt_xdp').id);
  t.true(pingFromPeer(p), 'XDP_PASS lets traffic through');
  throwsNative(
    t,
    () => native.xdpAttach(p.ifindex, prog('nt_xdp').fd, XDP_FLAGS_UPDATE_IF_NOEXIST),
    'EBUSY',
    'bpf_xdp_attach',
  );
  native.xdpDetach(p.ifindex, 0);
  t.is(xdpId(), undefined);
});

test.serial("tcFilters names the program at each of netfence's places; tcFilterDelete removes that one only", (t) => {
  const p = vethPair();
  const { prog } = load(t);
  const p1 = prog('nt_classify');
  const filters = (): string => run('tc', ['filter', 'show', 'dev', p.name, 'ingress']);

  t.deepEqual(native.tcFilters(p.ifindex, 'ingress'), [], 'no clsact qdisc: none');
  native.tcAttach(p.ifindex, 'ingress', p1.fd, { forceClsact: true });
  t.deepEqual(native.tcFilters(p.ifindex, 'ingress'), [
    { priority: 1, handle: 0x4e46, progId: p1.id, progName: 'nt_classify' },
  ]);
  t.deepEqual(native.tcFilters(p.ifindex, 'egress'), [], 'the other direction has none');
  // a move ahead's spare left by a crash
  const progPin = path.join(pinDir(t), 'prog');
  native.pin(p1.fd, progPin);
  run('tc', [
    'filter',
    'add',
    'dev',
    p.name,
    'ingress',
    'prio',
    '1',
    'handle',
    '0x4e47',
    'bpf',
    'da',
    'pinned',
    progPin,
  ]);
  t.deepEqual(
    native.tcFilters(p.ifindex, 'ingress').map((f) => f.handle),
    [0x4e46, 0x4e47],
  );

  run('tc', ['filter', 'add', 'dev', p.name, 'ingress', 'prio', '7', 'u32', 'match', 'u32', '0', '0']);
  native.tcFilterDelete(p.ifindex, 'ingress', 1, 0x4e46);
  t.deepEqual(
    native.tcFilters(p.ifindex, 'ingress').map((f) => f.handle),
    [0x4e47],
    'the spare stays',
  );
  native.tcFilterDelete(p.ifindex, 'ingress', 1, 0x4e47);
  t.deepEqual(native.tcFilters(p.ifindex, 'ingress'), []);
  t.regex(filters(), /pref 7 u32/, "someone else's filter stays");
  native.tcFilterDelete(p.ifindex, 'ingress', 1, 0x4e46); // already gone: no error
  throwsNative(t, () => native.tcFilterDelete(p.ifindex, 'ingress', 7, 0x4e46), 'EINVAL', 'tcFilterDelete');
  throwsNative(t, () => native.tcFilterDelete(p.ifindex, 'ingress', 1, 0x800), 'EINVAL', 'tcFilterDelete');
  throwsNative(t, () => native.tcFilters(99999, 'ingress'), 'ENODEV', 'bpf_tc_query');
});

test.serial('attach errors', (t) => {
  const { prog } = load(t);
  const fd = prog('nt_classify').fd;
  const linkPin = path.join(pinDir(t), 'link');
  const e = throwsNative(t, () => native.tcAttach(99999, 'ingress', fd, { linkPin }), 'ENODEV', 'bpf_link_create');
  t.is(e.message, 'attach tc ingress of ifindex 99999: No such device');
  throwsNative(t, () => native.tcAttach(99999, 'ingress', fd, { forceClsact: true }), 'ENODEV', 'bpf_tc_attach');
  throwsNative(t, () => native.tcAttach(1, 'sideways' as 'ingress', fd, {}), 'EINVAL', 'tcAttach');
  throwsNative(t, () => native.xdpAttach(99999, prog('nt_xdp').fd, 0), 'ENODEV', 'bpf_xdp_attach');
  const p = vethPair();
  throwsNative(
    t,
    () => native.tcAttach(p.ifindex, 'ingress', prog('nt_xdp').fd, { linkPin }),
    'EINVAL',
    'bpf_tc_attach',
  );
});
