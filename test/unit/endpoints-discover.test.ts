import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LinkInfo } from '../../src/datapath/native-api';
import { cniEndpointKey, discoverEndpoints, endpointOn, type NetView } from '../../src/endpoints/discover';
import { layoutError } from '../../src/endpoints/layout';
import { representorOf } from '../../src/endpoints/sysfs';
import type { PodObj, Snapshot } from '../../src/model/types';

const link = (ifindex: number, name: string, mac = '', extra: Partial<LinkInfo> = {}): LinkInfo => ({
  ifindex,
  name,
  kind: 'veth',
  mac,
  up: true,
  masterIfindex: 0,
  linkIfindex: 0,
  ...extra,
});

function pod(name: string, ips: string[], extra: Partial<PodObj> = {}): PodObj {
  return {
    namespace: 'ns',
    name,
    labels: {},
    annotations: {},
    nodeName: 'n1',
    hostNetwork: false,
    ports: [],
    ips,
    networks: [],
    ...extra,
  };
}

function snap(pods: PodObj[]): Snapshot {
  return {
    namespaces: [],
    pods,
    nodes: [],
    services: [],
    networkAttachmentDefinitions: [],
    policies: [],
    errors: [],
    warnings: [],
    config: {} as Snapshot['config'],
  };
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
  for (const [name, sw, port] of [
    ['eth_rep0', 'abcd', 'pf0vf0'],
    ['eth_rep1', 'abcd', 'pf0vf1'],
    ['other1', 'ffff', 'pf0vf1'],
  ]) {
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
    links: [
      link(1, 'lo'),
      link(2, 'eth0'),
      link(3, 'ens160'),
      link(10, 'veth-a', '02:00:00:00:01:0a'),
      link(11, 'veth-b'),
      link(20, 'eth_rep1'),
      link(21, 'nr-sec'),
    ],
    routes: [
      { family: 4 as const, table: 254, dst: '10.244.0.5/32', oif: 10 },
      { family: 6 as const, table: 254, dst: 'fd00::6/128', oif: 11 },
      { family: 4 as const, table: 254, dst: '10.244.0.0/24', oif: 2 },
      { family: 4 as const, table: 254, dst: '192.168.5.7/32', oif: 21 },
    ],
    neighbours: [],
    fdb: [],
    peerMac: (l: LinkInfo) => (l.ifindex === 10 ? '02:00:00:00:02:0a' : null),
    peerAddrs: () => [],
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
    {
      ifname: 'veth-a',
      ifindex: 10,
      kind: 'pod',
      pod: 'ns/a',
      veth: { podMac: '02:00:00:00:02:0a', hostMac: '02:00:00:00:01:0a' },
    },
    { ifname: 'veth-b', ifindex: 11, kind: 'pod', pod: 'ns/b' },
    { ifname: 'eth_rep1', ifindex: 20, kind: 'secondary', pod: 'ns/a', network: 'ns/sriov' },
    { ifname: 'nr-sec', ifindex: 21, kind: 'secondary', pod: 'ns/b', network: 'ns/mac' },
  ]);
  t.deepEqual(d.warnings, [
    'discover pod ns/c: no /32 or /128 route to 10.244.0.77 on this node, and no neighbour entry or bridge port with them',
  ]);
  fs.rmSync(root, { recursive: true });
});

test('a CNI-announced host interface wins over the route while it is the same link; a reused name falls back to the route', (t) => {
  const view = {
    links: [link(10, 'veth-old'), link(12, 'veth-cni')],
    routes: [{ family: 4 as const, table: 254, dst: '10.244.0.5/32', oif: 10 }],
    neighbours: [],
    fdb: [],
    peerMac: () => null,
    peerAddrs: () => [],
  };
  const s = snap([pod('a', ['10.244.0.5'])]);
  const opts = { nodeName: 'n1', hostInterfaces: [], sysfsRoot: '/nonexistent' };
  const announced = discoverEndpoints(view, s, {
    ...opts,
    cniInterfaces: new Map([['ns/a', { name: 'veth-cni', ifindex: 12 }]]),
  });
  t.deepEqual(announced.endpoints, [{ ifname: 'veth-cni', ifindex: 12, kind: 'pod', pod: 'ns/a' }]);
  const reused = discoverEndpoints(view, s, {
    ...opts,
    cniInterfaces: new Map([['ns/a', { name: 'veth-cni', ifindex: 99 }]]),
  });
  t.deepEqual(reused.endpoints, [{ ifname: 'veth-old', ifindex: 10, kind: 'pod', pod: 'ns/a' }]);
});

test('a pod with a CNI-announced interface per network: each network is its own endpoint on its own link', (t) => {
  const view = {
    links: [link(12, 'veth-eth0'), link(13, 'veth-net1')],
    routes: [],
    neighbours: [],
    fdb: [],
    peerMac: () => null,
    peerAddrs: () => [],
  };
  const s = snap([
    pod('a', ['10.244.0.5'], { networks: [{ network: 'ns/blue', interface: 'net1', ips: ['10.10.0.5'] }] }),
  ]);
  const cniInterfaces = new Map([
    [cniEndpointKey('ns/a'), { name: 'veth-eth0', ifindex: 12 }],
    [cniEndpointKey('ns/a', 'ns/blue'), { name: 'veth-net1', ifindex: 13 }],
  ]);
  const found = discoverEndpoints(view, s, {
    nodeName: 'n1',
    hostInterfaces: [],
    sysfsRoot: '/nonexistent',
    cniInterfaces,
  });
  t.deepEqual(found.endpoints, [
    { ifname: 'veth-eth0', ifindex: 12, kind: 'pod', pod: 'ns/a' },
    { ifname: 'veth-net1', ifindex: 13, kind: 'secondary', pod: 'ns/a', network: 'ns/blue' },
  ]);
  t.deepEqual(found.warnings, []);
});

/** A node with bridge cni0 (5), its ports veth-p (30, pod p), veth-q (31, pod q, learned
 *  in no FDB entry), veth-r (32, routed: ptp), a macvlan (40) and uplink eth0 (2). */
function bridgeNode(): NetView {
  const peers: Record<number, string> = { 30: '0a:00:00:00:00:30', 31: '0a:00:00:00:00:31', 32: '0a:00:00:00:00:32' };
  return {
    links: [
      link(2, 'eth0', '', { kind: '' }),
      link(5, 'cni0', '02:00:00:00:00:05', { kind: 'bridge' }),
      link(30, 'veth-p', '02:00:00:00:00:30', { masterIfindex: 5 }),
      link(31, 'veth-q', '02:00:00:00:00:31', { masterIfindex: 5 }),
      link(32, 'veth-r', '02:00:00:00:00:32'),
      link(33, 'veth-s', '02:00:00:00:00:33', { masterIfindex: 5 }),
      link(40, 'mv0', '02:00:00:00:00:40', { kind: 'macvlan', linkIfindex: 2 }),
      link(50, 'br-int', '02:00:00:00:00:50', { kind: 'openvswitch' }),
      link(51, 'veth-o', '02:00:00:00:00:51', { masterIfindex: 50 }),
    ],
    routes: [
      { family: 4, table: 254, dst: '10.22.0.0/16', oif: 5 },
      // a /32 through the bridge device itself (the workaround) still means its port
      { family: 4, table: 254, dst: '10.22.0.3/32', oif: 5 },
      { family: 4, table: 254, dst: '10.23.0.9/32', oif: 32 },
      { family: 4, table: 254, dst: '10.24.0.4/32', oif: 40 },
    ],
    neighbours: [
      { family: 4, ifindex: 5, ip: '10.22.0.2', mac: '0a:00:00:00:00:30', valid: true },
      { family: 4, ifindex: 5, ip: '10.22.0.3', mac: '0a:00:00:00:00:31', valid: true },
      { family: 4, ifindex: 5, ip: '10.22.0.7', mac: '0a:00:00:00:00:77', valid: true },
      { family: 4, ifindex: 5, ip: '10.22.0.8', mac: '0a:00:00:00:00:30', valid: false },
      // the routed pod's IP answered by another MAC than its veth peer's: a stale route
      { family: 4, ifindex: 32, ip: '10.23.0.9', mac: '0a:00:00:00:00:99', valid: true },
      { family: 4, ifindex: 50, ip: '10.25.0.5', mac: '0a:00:00:00:00:51', valid: true },
    ],
    fdb: [
      { ifindex: 30, masterIfindex: 5, mac: '02:00:00:00:00:30', vlan: 0, local: true, self: false },
      { ifindex: 30, masterIfindex: 5, mac: '0a:00:00:00:00:30', vlan: 0, local: false, self: false },
    ],
    peerMac: (l: LinkInfo) => peers[l.ifindex] ?? null,
    // veth-s's pod has not talked to the node yet (no neighbour entry, no FDB entry)
    peerAddrs: (l: LinkInfo) =>
      ({ 33: ['10.22.0.11', 'fd00:22::11'], 32: ['10.22.0.12'], 51: ['10.25.0.5'] })[l.ifindex] ?? [],
  };
}

test('bridge layout: pod IP -> neighbour MAC -> the FDB port or the port whose veth peer has it, else the (Linux or OVS) bridge port whose peer has the IP; never the bridge; marked bridged, no veth MACs (no local delivery)', (t) => {
  const pods = [
    pod('p', ['10.22.0.2']),
    pod('q', ['10.22.0.3']),
    pod('s', ['fd00:22::11']),
    pod('r', ['10.22.0.12']),
    pod('o', ['10.25.0.5']),
  ];
  const d = discoverEndpoints(bridgeNode(), snap(pods), {
    nodeName: 'n1',
    hostInterfaces: [],
    sysfsRoot: '/nonexistent',
  });
  t.deepEqual(d.endpoints, [
    { ifname: 'veth-p', ifindex: 30, kind: 'pod', pod: 'ns/p', bridge: 'cni0' },
    { ifname: 'veth-q', ifindex: 31, kind: 'pod', pod: 'ns/q', bridge: 'cni0' },
    { ifname: 'veth-s', ifindex: 33, kind: 'pod', pod: 'ns/s', bridge: 'cni0' },
    { ifname: 'veth-o', ifindex: 51, kind: 'pod', pod: 'ns/o', bridge: 'br-int' },
  ]);
  // r's address is on a routed veth's peer, not a bridge port's: not looked at
  t.deepEqual(d.warnings, [
    'discover pod ns/r: no /32 or /128 route to 10.22.0.12 on this node, and no neighbour entry or bridge port with them',
  ]);
});

test('bridge layout failures name the reason: MAC on no port, unresolved neighbour, unsupported layouts, a routed veth whose peer is not the IP', (t) => {
  const pods = [
    pod('gone', ['10.22.0.7']),
    pod('incomplete', ['10.22.0.8']),
    pod('mv', ['10.24.0.4']),
    pod('stale', ['10.23.0.9']),
  ];
  const d = discoverEndpoints(bridgeNode(), snap(pods), {
    nodeName: 'n1',
    hostInterfaces: [],
    sysfsRoot: '/nonexistent',
  });
  t.deepEqual(d.endpoints, []);
  t.is(d.warnings.length, 4);
  t.is(
    d.warnings[0],
    'discover pod ns/gone: 10.22.0.7 is at 0a:00:00:00:00:77 behind bridge cni0, on none of its ports',
  );
  t.is(
    d.warnings[1],
    'discover pod ns/incomplete: no /32 or /128 route to 10.22.0.8 on this node, and no neighbour entry or bridge port with them',
  );
  t.regex(
    d.warnings[2],
    /^discover pod ns\/mv: layout macvlan \(mv0\) cannot be enforced on: supported: a host-side veth per pod, routed \(ptp.*a port of a Linux bridge \(bridge, flannel, k3s, Canal\) or OVS bridge/,
  );
  t.is(
    d.warnings[3],
    'discover pod ns/stale: 10.23.0.9 is at 0a:00:00:00:00:99 on veth-r, whose veth peer is 0a:00:00:00:00:32',
  );
});

test('layoutError refuses macvlan, ipvlan, OVS internal ports and bridge devices; accepts veths and devices without a kind (VF representors)', (t) => {
  t.regex(
    layoutError({ name: 'ipvl0', kind: 'ipvlan' }) ?? '',
    /^layout ipvlan \(ipvl0\) cannot be enforced on: supported: /,
  );
  t.regex(layoutError({ name: 'ovs-p1', kind: 'openvswitch' }) ?? '', /^layout OVS internal port \(ovs-p1\)/);
  t.regex(
    layoutError({ name: 'cni0', kind: 'bridge' }) ?? '',
    /^cni0 is a Linux bridge, not a pod's interface: enforce on the pod's bridge port/,
  );
  t.is(layoutError({ name: 'veth1', kind: 'veth' }), undefined);
  t.is(layoutError({ name: 'eth_rep0', kind: '' }), undefined);
});

test('endpointOn (a CNI-announced host interface): a bridge port carries its bridge, a routed veth its MACs, a macvlan or the bridge itself is refused', (t) => {
  const view = bridgeNode();
  const byName = (n: string): LinkInfo => view.links.find((l) => l.name === n)!;
  t.deepEqual(endpointOn(view, byName('veth-q'), { kind: 'pod', pod: 'ns/q' }), {
    ifname: 'veth-q',
    ifindex: 31,
    kind: 'pod',
    pod: 'ns/q',
    bridge: 'cni0',
  });
  t.deepEqual(endpointOn(view, byName('veth-r'), { kind: 'pod', pod: 'ns/r' }), {
    ifname: 'veth-r',
    ifindex: 32,
    kind: 'pod',
    pod: 'ns/r',
    veth: { podMac: '0a:00:00:00:00:32', hostMac: '02:00:00:00:00:32' },
  });
  t.deepEqual(endpointOn(view, byName('veth-r'), { kind: 'secondary', pod: 'ns/r', network: 'ns/net' }), {
    ifname: 'veth-r',
    ifindex: 32,
    kind: 'secondary',
    pod: 'ns/r',
    network: 'ns/net',
  });
  t.regex(
    (endpointOn(view, byName('mv0'), { kind: 'pod', pod: 'ns/m' }) as { error: string }).error,
    /^layout macvlan \(mv0\) cannot be enforced on/,
  );
  t.regex(
    (endpointOn(view, byName('cni0'), { kind: 'pod', pod: 'ns/m' }) as { error: string }).error,
    /^cni0 is a Linux bridge/,
  );
});

test('a CNI-announced bridge port is marked bridged (no local delivery, no tunnel)', (t) => {
  const d = discoverEndpoints(bridgeNode(), snap([pod('q', [])]), {
    nodeName: 'n1',
    hostInterfaces: [],
    sysfsRoot: '/nonexistent',
    cniInterfaces: new Map([['ns/q', { name: 'veth-q', ifindex: 31 }]]),
  });
  t.deepEqual(d.endpoints, [{ ifname: 'veth-q', ifindex: 31, kind: 'pod', pod: 'ns/q', bridge: 'cni0' }]);
});
