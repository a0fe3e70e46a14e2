// unshareNet / setNetns move the calling (JS) thread; children spawned later follow it.
import test from 'ava';
import fs from 'node:fs';
import { native } from '../../src/datapath/native';
import { netnsAdd, run, throwsNative } from './helpers';

const netnsOf = (): string => fs.readlinkSync('/proc/thread-self/ns/net');

test.serial('unshareNet gives a private netns with only loopback', (t) => {
  const before = netnsOf();
  native.unshareNet();
  t.not(netnsOf(), before);
  const links = JSON.parse(run('ip', ['-j', 'link', 'show'])) as { ifname: string }[];
  t.deepEqual(
    links.map((l) => l.ifname),
    ['lo'],
  );
});

test.serial('setNetns enters a named netns', (t) => {
  const { name, del } = netnsAdd('nf-nt-ns');
  t.teardown(del);
  native.setNetns(`/run/netns/${name}`);
  t.is(netnsOf(), `net:[${fs.statSync(`/run/netns/${name}`).ino}]`);
  const e = throwsNative(t, () => native.setNetns('/run/netns/nf-absent'), 'ENOENT', 'open');
  t.is(e.message, 'open netns /run/netns/nf-absent: No such file or directory');
  throwsNative(t, () => native.setNetns('/proc/self/status'), 'EINVAL', 'setns');
});
