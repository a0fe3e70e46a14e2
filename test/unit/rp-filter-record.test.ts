import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RpFilterRecord } from '../../src/agent/rp-filter-record';

/** A /proc double with an rp_filter per interface, and a record file beside it. */
function setup(t: { teardown(f: () => void): void }, values: Record<string, string>) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nf-rpf-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const sysctl = (ifname: string): string => path.join(dir, 'proc/sys/net/ipv4/conf', ifname, 'rp_filter');
  const set = (ifname: string, v: string): void => {
    fs.mkdirSync(path.dirname(sysctl(ifname)), { recursive: true });
    fs.writeFileSync(sysctl(ifname), `${v}\n`);
  };
  for (const [k, v] of Object.entries(values)) set(k, v);
  const get = (ifname: string): string => fs.readFileSync(sysctl(ifname), 'utf8').trim();
  const file = path.join(dir, 'run/rp-filter.json');
  return { record: new RpFilterRecord(file, path.join(dir, 'proc')), set, get, file };
}

test('the value before the tunnel is recorded once and put back when the tunnel goes off', async (t) => {
  const { record, set, get, file } = setup(t, { eth0: '1' });
  await record.remember('eth0');
  set('eth0', '2'); // what the tunnel does next
  await record.remember('eth0'); // a later pass, or a restarted agent: finds its own 2
  t.deepEqual(record.read(), { eth0: '1' });
  record.restoreAll();
  t.is(get('eth0'), '1');
  t.false(fs.existsSync(file), 'the record is gone with the tunnel');
  record.restoreAll();
  t.is(get('eth0'), '1', 'nothing recorded: nothing to do');
});

test('moving the tunnel to another uplink puts the first one back', async (t) => {
  const { record, set, get } = setup(t, { eth0: '0', eth1: '1' });
  await record.remember('eth0');
  set('eth0', '2');
  await record.remember('eth1');
  t.is(get('eth0'), '0');
  t.deepEqual(record.read(), { eth1: '1' });
});

test('a value changed since netfence set 2, a gone interface or a damaged record is left alone', async (t) => {
  const { record, set, get, file } = setup(t, { eth0: '1', eth1: '0' });
  await record.remember('eth0');
  await record.remember('eth0');
  set('eth0', '0'); // an operator's choice after the tunnel's 2
  t.deepEqual(record.restores(), [], "not netfence's value any more");
  fs.writeFileSync(file, '{"eth1":"1","../x":"0","eth0":"7"}');
  set('eth1', '2');
  t.deepEqual(Object.keys(record.read()), ['eth1'], 'only well-formed entries are trusted');
  fs.writeFileSync(file, '{"nosuch":"1"}');
  t.deepEqual(record.restores(), [], 'an interface that is gone');
  fs.writeFileSync(file, 'not json');
  record.restoreAll();
  t.is(get('eth1'), '2', 'a damaged record restores nothing');
  await record.remember('nosuch');
  t.deepEqual(record.read(), {}, 'no such interface: nothing recorded (the tunnel reports it)');
});
