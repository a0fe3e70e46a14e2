// prevResultIps: the addresses of a CNI result, canonical, whatever else the result holds.
import test from 'ava';
import { prevResultIps } from '../../src/agent/cni-ips';

test('addresses of prevResult.ips, canonical, prefix lengths dropped', (t) => {
  const result = {
    cniVersion: '1.0.0',
    interfaces: [{ name: 'eth0' }],
    ips: [{ address: '10.244.1.5/24', interface: 0 }, { address: 'fd00:0:0::0005/64' }],
  };
  t.deepEqual(prevResultIps(result), ['10.244.1.5', 'fd00::5']);
});

test('no result, no ips, or unreadable entries give no addresses', (t) => {
  for (const r of [undefined, null, 'x', {}, { ips: 'x' }, { ips: [null, { address: 7 }, { address: 'nope/24' }] }])
    t.deepEqual(prevResultIps(r), [], JSON.stringify(r));
});
