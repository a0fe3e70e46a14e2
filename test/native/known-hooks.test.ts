// The agent's memory of its hooks (src/agent/known-hooks) over the real TcAttacher on a veth
// in a private netns: a hook it attached is answered from memory, also once removed behind
// its back, until verify(); a device gone since discovery reads as "not attached" instead
// of failing the pass.
import test from 'ava';
import fs from 'node:fs';
import { KnownHooks } from '../../src/agent/known-hooks';
import { native } from '../../src/datapath/native';
import { TcAttacher } from '../../src/datapath/attach';
import { filtersDir, linksDir } from '../../src/datapath/loader';
import { fixtureObject, pinDir, run } from './helpers';

test.before(() => {
  native.unshareNet(); // private netns: gone with this process
});

function veth(name: string): { ifname: string; ifindex: number } {
  run('ip', ['link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`]);
  run('ip', ['link', 'set', name, 'up']);
  return { ifname: name, ifindex: native.linkByName(name)!.ifindex };
}

function attacher(t: Parameters<typeof pinDir>[0]): { tc: TcAttacher; root: string } {
  const h = native.openObject(fixtureObject(), {});
  t.teardown(() => h.close());
  const prog = h.programs().find((p) => p.name === 'nt_classify')!;
  const root = pinDir(t);
  fs.mkdirSync(linksDir(root)); // the loader makes them in the agent
  fs.mkdirSync(filtersDir(root));
  return { tc: new TcAttacher(native, root, { ingress: prog, egress: prog }), root };
}

test.serial('a hook attached is known without asking the kernel until verify()', (t) => {
  const { tc } = attacher(t);
  const hooks = new KnownHooks(tc);
  const ep = veth('nfkh1');
  t.false(hooks.attached(ep, 'ingress'));
  hooks.attach(ep, 'ingress');
  t.true(hooks.attached(ep, 'ingress'));
  t.false(hooks.attached(ep, 'egress'));
  // Removed behind its back: remembered until the resync's verify(), then asked again.
  native.tcDetach(ep.ifindex, 'ingress', { linkPin: tc.linkPin(ep.ifname, 'ingress') });
  t.false(tc.attached(ep, 'ingress'));
  t.true(hooks.attached(ep, 'ingress'));
  hooks.verify();
  t.false(hooks.attached(ep, 'ingress'));
  // Its own detach is forgotten at once.
  hooks.attach(ep, 'egress');
  hooks.detach(ep, 'egress');
  t.false(hooks.attached(ep, 'egress'));
  t.is(tc.programAt(ep, 'egress'), 0);
});

test.serial('a device gone since discovery is not attached (no ENODEV out of the pass)', (t) => {
  const { tc } = attacher(t);
  const ep = veth('nfkh2');
  run('ip', ['link', 'del', ep.ifname]);
  t.false(tc.attached(ep, 'ingress'));
  t.false(new KnownHooks(tc).attached(ep, 'egress'));
  t.throws(() => tc.attach(ep, 'ingress'), { message: /ifindex/ });
});

test.serial(
  "a clsact hook removed behind the agent's back: markedHook says lost, forget() asks the kernel again",
  (t) => {
    const { tc } = attacher(t);
    const hooks = new KnownHooks(tc);
    const ep = { ...veth('nfkh3'), kind: 'pod' as const };
    t.is(tc.markedHook(ep, 'ingress'), 'none', 'no marker: not ours');
    hooks.attach(ep, 'ingress');
    hooks.attach(ep, 'egress');
    t.is(tc.markedHook(ep, 'ingress'), 'attached');
    run('tc', ['qdisc', 'del', 'dev', ep.ifname, 'clsact']);
    t.is(tc.markedHook(ep, 'ingress'), 'lost');
    t.is(tc.markedHook(ep, 'egress'), 'lost');
    t.true(hooks.attached(ep, 'ingress'), 'remembered');
    hooks.forget(ep, 'ingress');
    t.false(hooks.attached(ep, 'ingress'), 'forgotten: the kernel is asked');
    t.true(hooks.attached(ep, 'egress'), 'only that hook');
    hooks.attach(ep, 'ingress');
    t.is(tc.markedHook(ep, 'ingress'), 'attached');
    run('ip', ['link', 'del', ep.ifname]);
    t.is(tc.markedHook(ep, 'ingress'), 'none', 'the interface is gone: nothing to repair');
  },
);
