// The agent's TcAttacher on real veths in a private netns: a pod's interface gets a clsact
// filter (its marker pinned under <root>/filters), a host interface a TCX link; a filter is
// replaced in place, found again by a new attacher (a restarted agent), removed with its
// marker on detach, and another owner's filters on the same hooks are left alone.
import test from 'ava';
import fs from 'node:fs';
import { native } from '../../src/datapath/native';
import { hookPins, TcAttacher, type EndpointRef } from '../../src/datapath/attach';
import { filtersDir, linksDir } from '../../src/datapath/loader';
import type { ProgInfo } from '../../src/datapath/native-api';
import { fixtureObject, pinDir, run } from './helpers';

test.before(() => {
  native.unshareNet(); // private netns: gone with this process
});

let vethCount = 0;
function veth(kind: EndpointRef['kind']): EndpointRef {
  const name = `nfta${++vethCount}`;
  run('ip', ['link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`]);
  run('ip', ['link', 'set', name, 'up']);
  return { ifname: name, ifindex: native.linkByName(name)!.ifindex, kind };
}

function setup(t: Parameters<typeof pinDir>[0]): { root: string; p1: ProgInfo; p2: ProgInfo } {
  const h = native.openObject(fixtureObject(), {});
  t.teardown(() => h.close());
  const prog = (n: string): ProgInfo => h.programs().find((p) => p.name === n)!;
  const root = pinDir(t);
  fs.mkdirSync(linksDir(root)); // the loader makes both in the agent
  fs.mkdirSync(filtersDir(root));
  return { root, p1: prog('nt_classify'), p2: prog('nt_classify2') };
}

const filters = (ep: EndpointRef, dir: string): string => run('tc', ['filter', 'show', 'dev', ep.ifname, dir]);
const pinnedProgId = (pin: string): number =>
  (JSON.parse(run('bpftool', ['prog', 'show', 'pinned', pin, '-j'])) as { id: number }).id;

test.serial('a pod interface: clsact filter and marker, replaced in place, adopted, detached alone', (t) => {
  const { root, p1, p2 } = setup(t);
  const tc = new TcAttacher(native, root, { ingress: p1, egress: p1 });
  const ep = veth('pod');
  const pins = hookPins(root, ep.ifname, 'ingress');
  // Someone else's filters on the same hook, before and after ours.
  run('tc', ['qdisc', 'add', 'dev', ep.ifname, 'clsact']);
  run('tc', ['filter', 'add', 'dev', ep.ifname, 'ingress', 'prio', '7', 'u32', 'match', 'u32', '0', '0']);

  t.false(tc.attached(ep, 'ingress'));
  for (const d of ['ingress', 'egress'] as const) tc.attach(ep, d);
  t.true(tc.attached(ep, 'ingress'));
  t.is(tc.programAt(ep, 'ingress'), p1.id);
  t.regex(filters(ep, 'ingress'), /handle 0x4e46 nt_classify:.*direct-action/);
  const shown = filters(ep, 'ingress');
  t.true(
    /pref 1 bpf/.test(shown) && shown.indexOf('pref 1 ') < shown.indexOf('pref 7 '),
    'ours runs first, ahead of the filter at priority 7',
  );
  t.false(fs.existsSync(pins.link), 'no TCX link');
  t.is(pinnedProgId(pins.marker), p1.id, 'the marker pins the program the filter runs');
  run('tc', ['filter', 'add', 'dev', ep.ifname, 'ingress', 'prio', '60000', 'u32', 'match', 'u32', '0', '0']);

  // A restarted agent: a new attacher finds the hook through its marker and moves it to new programs.
  const again = new TcAttacher(native, root, { ingress: p1, egress: p1 });
  t.deepEqual(
    again.list().map((r) => r.ifname),
    [ep.ifname],
  );
  t.true(again.attached({ ifname: ep.ifname, ifindex: ep.ifindex }, 'ingress'));
  again.switchPrograms({ ingress: p2, egress: p2 });
  t.is(again.programAt(ep, 'ingress'), p2.id);
  t.is(filters(ep, 'ingress').match(/handle 0x4e46/g)?.length, 1, 'replaced, not added');
  t.is(pinnedProgId(pins.marker), p2.id, 'the marker follows the program');
  t.false(fs.existsSync(pins.link), 'still no TCX link');

  again.detach(ep, 'ingress');
  t.is(again.programAt(ep, 'ingress'), 0);
  t.false(fs.existsSync(pins.marker));
  t.regex(filters(ep, 'ingress'), /pref 7 u32/, "someone else's filter stays");
  t.regex(filters(ep, 'ingress'), /pref 60000 u32/, "someone else's filter stays");
  t.is(again.programAt(ep, 'egress'), p2.id, 'the other hook stays');
  again.detach(ep, 'egress');
  t.deepEqual(again.list(), []);
});

test.serial('a host interface gets a TCX link, a pod interface moves from one to the filter', (t) => {
  const { root, p1 } = setup(t);
  const tc = new TcAttacher(native, root, { ingress: p1, egress: p1 });
  const host = veth('host');
  tc.attach(host, 'ingress');
  const hostPins = hookPins(root, host.ifname, 'ingress');
  t.true(fs.existsSync(hostPins.link));
  t.false(fs.existsSync(hostPins.marker));
  t.is(filters(host, 'ingress').trim(), '');
  t.true(tc.attached(host, 'ingress'));

  // A pod hook an older agent attached through TCX moves to a filter with no gap (the
  // native test proves the order); a filter of ours without a marker is attached again.
  const pod = veth('pod');
  const podPins = hookPins(root, pod.ifname, 'egress');
  native.tcAttach(pod.ifindex, 'egress', p1.fd, { linkPin: podPins.link });
  t.true(tc.attached(pod, 'egress'));
  tc.attach(pod, 'egress');
  t.false(fs.existsSync(podPins.link));
  t.true(fs.existsSync(podPins.marker));
  t.is(tc.programAt(pod, 'egress'), p1.id);
  native.unpin(podPins.marker);
  t.false(tc.attached(pod, 'egress'), 'an unrecorded filter is not taken as ours');
  tc.attach(pod, 'egress');
  t.true(tc.attached(pod, 'egress'));
  t.is(filters(pod, 'egress').match(/handle 0x4e46/g)?.length, 1);

  // The interface goes: its marker is left for the pass that detaches it.
  run('ip', ['link', 'del', pod.ifname]);
  const gone = tc.list().find((r) => r.ifname === pod.ifname)!;
  t.is(gone.ifindex, 0);
  tc.detach(gone, 'egress');
  t.false(fs.existsSync(podPins.marker));
  tc.detach(host, 'ingress');
  t.deepEqual(tc.list(), []);
});

test.serial('a pod hook whose link pin holds something not ours fails before any filter is added', (t) => {
  const { root, p1 } = setup(t);
  const tc = new TcAttacher(native, root, { ingress: p1, egress: p1 });
  const ep = veth('pod');
  const squat = native.mapCreate(2 /* ARRAY */, 'nf_squat', 4, 4, 1, 0);
  native.pin(squat, hookPins(root, ep.ifname, 'egress').link);
  native.closeFd(squat);
  t.throws(() => tc.attach(ep, 'egress'), { message: /holds another hook's link/ });
  t.is(native.tcQuery(ep.ifindex, 'egress', {}), 0);
  t.false(fs.existsSync(hookPins(root, ep.ifname, 'egress').marker));
});

test.serial("an older agent's filter (priority 0x4e46) is replaced by ours at priority 1, no gap", (t) => {
  const { root, p1 } = setup(t);
  const tc = new TcAttacher(native, root, { ingress: p1, egress: p1 });
  const ep = veth('pod');
  const prog = `${root}/legacy-prog`;
  native.pin(p1.fd, prog);
  run('tc', ['qdisc', 'add', 'dev', ep.ifname, 'clsact']);
  run('tc', [
    'filter',
    'add',
    'dev',
    ep.ifname,
    'ingress',
    'prio',
    String(0x4e46),
    'handle',
    '0x4e46',
    'bpf',
    'object-pinned',
    prog,
    'da',
  ]);
  t.regex(filters(ep, 'ingress'), /pref 20038 bpf/);
  t.false(tc.attached(ep, 'ingress'), 'the older filter is not taken as the current one');
  tc.attach(ep, 'ingress');
  t.is(tc.programAt(ep, 'ingress'), p1.id);
  t.regex(filters(ep, 'ingress'), /pref 1 bpf/);
  t.notRegex(filters(ep, 'ingress'), /pref 20038/, 'the older filter is gone');
  tc.detach(ep, 'ingress');
  t.is(filters(ep, 'ingress').trim(), '');
});

test.serial(
  'moveAhead: ours first again after a cls_bpf filter was added at its priority; nothing else changed',
  (t) => {
    const { root, p1, p2 } = setup(t);
    const tc = new TcAttacher(native, root, { ingress: p1, egress: p1 });
    const ep = veth('pod');
    tc.attach(ep, 'ingress');
    // Another owner's cls_bpf filter at priority 1: the kernel runs it first (newest first).
    const other = `${root}/other`;
    native.pin(p2.fd, other);
    run('tc', ['filter', 'add', 'dev', ep.ifname, 'ingress', 'prio', '1', 'handle', '7', 'bpf', 'da', 'pinned', other]);
    const handles = (): string[] => [...filters(ep, 'ingress').matchAll(/handle (0x[0-9a-f]+)/g)].map((m) => m[1]);
    t.deepEqual(handles(), ['0x7', '0x4e46'], 'theirs runs first');
    tc.moveAhead(ep, 'ingress');
    t.deepEqual(handles(), ['0x4e46', '0x7'], 'ours first, the spare copy gone, theirs kept');
    t.is(tc.programAt(ep, 'ingress'), p1.id);
    t.is(pinnedProgId(hookPins(root, ep.ifname, 'ingress').marker), p1.id, 'the marker pins the program');
  },
);
