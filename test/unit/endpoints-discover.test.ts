import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LinkInfo } from '../../src/datapath/native-api';
import { discoverEndpoints } from '../../src/endpoints/discover';
import { representorOf } from '../../src/endpoints/sysfs';
import type { PodObj, Snapshot } from '../../src/model/types';

const link = (ifindex: number, name: string, mac = ''): LinkInfo => ({ ifindex, name, kind: 'veth', mac, up: true, masterIfindex: 0, linkIfindex: 0 });

function pod(name: string, ips: string[], extra: Partial<PodObj> = {}): PodObj {
  return { namespace: 'ns', name, labels: {}, annotations: {}, nodeName: 'n1', hostNetwork: false, ports: [], ips, networks: [], ...extra };
}

function snap(pods: PodObj[]): Snapshot {
  return { namespaces: [], pods, nodes: [], services: [], networkAttachmentDefinitions: [], policies: [], errors: [], warnings: [], config: {} as Snapshot['config'] };
}

/** A sysfs tree with PF 0000:03:00.0 (enp3s0f0, p0) and VFs 03:00.2 (vf0), 03:00.3 (vf1). */
function sysfsTree(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nf-sysfs-'));
  const dev = (p: string): string => path.join(root, 'bus/pci/devices', p);
  const net = (n: string): string => path.join(root, 'class/net', n);
  fs.mkdirSync(path.join(dev('0000:03:00.0'), 'net/enp3s0f0'), { recursive: true });
  fs.writeFileSync(path.join(dev('0000:03:00.0'), 'net/enp3s0f0/phys_switch_id'), 'abcd\n');
  fs.writeFileSync(path.join(dev('0000:03:00.0'), 'net/enp3s0f0/phys_port_name'), 'p0\n');
  ['0000:03:00.2', '0000:03:00.3'].forEach((vf, i) => {
    fs.mkdirSync(dev(vf), { recursive: true });
    fs.symlinkSync('../0000:03:00.0', path.join(dev(vf), 'physfn'));
    fs.symlinkSync(`../${vf}`, path.join(dev('0000:03:00.0'), `virtfn${i}`));
  });
  for (const [name, sw, port] of [['eth_rep0', 'abcd', 'pf0vf0'], ['eth_rep1', 'abcd', 'pf0vf1'], ['other1', 'ffff', 'pf0vf1']]) {
    fs.mkdirSync(net(name), { recursive: true });
    fs.writeFileSync(path.join(net(name), 'phys_switch_id'), `${sw}\n`);
    fs.writeFileSync(path.join(net(name), 'phys_port_name'), `${port}\n`);
  }
  return root;
}

test('VF representor found through physfn, virtfn index, switch id and port name', (t) => {
  const root = sysfsTree();
  t.is(representorOf(root, '0000:03:00.3'), 'eth_rep1');
  t.is(representorOf(root, '0000:03:00.2'), 'eth_rep0');
  const err = representorOf(root, '0000:03:00.0');
  t.true(err instanceof Error);
  t.regex((err as Error).message, /find representor of VF 0000:03:00.0: no physfn link/);
  fs.rmSync(root, { recursive: true });
});

test('pods by host routes (with both MACs of a veth whose peer is found), secondary networks by VF representor or route, host interfaces by glob', (t) => {
  const root = sysfsTree();
  const view = {
    links: [link(1, 'lo'), link(2, 'eth0'), link(3, 'ens160'), link(10, 'veth-a', '02:00:00:00:01:0a'), link(11, 'veth-b'), link(20, 'eth_rep1'), link(21, 'nr-sec')],
    routes: [
      { family: 4 as const, table: 254, dst: '10.244.0.5/32', oif: 10 },
      { family: 6 as const, table: 254, dst: 'fd00::6/128', oif: 11 },
      { family: 4 as const, table: 254, dst: '10.244.0.0/24', oif: 2 },
      { family: 4 as const, table: 254, dst: '192.168.5.7/32', oif: 21 },
    ],
    peerMac: (l: LinkInfo) => (l.ifindex === 10 ? '02:00:00:00:02:0a' : null),
  };
  const s = snap([
    pod('a', ['10.244.0.5'], { networks: [{ network: 'ns/sriov', ips: ['192.168.9.1'], pciAddress: '0000:03:00.3' }] }),
    pod('b', ['10.244.0.9', 'fd00::6'], { networks: [{ network: 'ns/mac', ips: ['192.168.5.7'] }] }),
    pod('c', ['10.244.0.77']),
    pod('elsewhere', ['10.244.0.5'], { nodeName: 'n2' }),
  ]);
  const d = discoverEndpoints(view, s, { nodeName: 'n1', hostInterfaces: ['eth*', 'ens1?0'], sysfsRoot: root });
  t.deepEqual(d.endpoints, [
    { ifname: 'eth0', ifindex: 2, kind: 'host' },
    { ifname: 'ens160', ifindex: 3, kind: 'host' },
    { ifname: 'veth-a', ifindex: 10, kind: 'pod', pod: 'ns/a', veth: { podMac: '02:00:00:00:02:0a', hostMac: '02:00:00:00:01:0a' } },
    { ifname: 'veth-b', ifindex: 11, kind: 'pod', pod: 'ns/b' },
    { ifname: 'eth_rep1', ifindex: 20, kind: 'secondary', pod: 'ns/a', network: 'ns/sriov' },
    { ifname: 'nr-sec', ifindex: 21, kind: 'secondary', pod: 'ns/b', network: 'ns/mac' },
  ]);
  t.deepEqual(d.warnings, ['discover pod ns/c: no /32 or /128 route to 10.244.0.77 on this node']);
  fs.rmSync(root, { recursive: true });
});

test('a CNI-announced host interface wins over the route while it is the same link; a reused name falls back to the route', (t) => {
  const view = {
    links: [link(10, 'veth-old'), link(12, 'veth-cni')],
    routes: [{ family: 4 as const, table: 254, dst: '10.244.0.5/32', oif: 10 }],
    peerMac: () => null,
  };
  const s = snap([pod('a', ['10.244.0.5'])]);
  const opts = { nodeName: 'n1', hostInterfaces: [], sysfsRoot: '/nonexistent' };
  const announced = discoverEndpoints(view, s, { ...opts, cniInterfaces: new Map([['ns/a', { name: 'veth-cni', ifindex: 12 }]]) });
  t.deepEqual(announced.endpoints, [{ ifname: 'veth-cni', ifindex: 12, kind: 'pod', pod: 'ns/a' }]);
  const reused = discoverEndpoints(view, s, { ...opts, cniInterfaces: new Map([['ns/a', { name: 'veth-cni', ifindex: 99 }]]) });
  t.deepEqual(reused.endpoints, [{ ifname: 'veth-old', ifindex: 10, kind: 'pod', pod: 'ns/a' }]);
});
