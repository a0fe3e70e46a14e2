// The host-side interface of a sandbox, found from what the real reference plugins build
// (driven like libcni in a private node netns): ptp names its host veth in the result;
// bridge lists the bridge too, which is not the pod's; without a host entry the veth peer
// of CNI_IFNAME is read inside CNI_NETNS; macvlan has no host side and is refused.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UnsupportedLayoutError, hostInterfaceOf } from '../../src/agent/sandboxes-hostif';
import { SUPPORTED_LAYOUTS } from '../../src/endpoints/layout';
import type { LinkInfo } from '../../src/datapath/native-api';
import { CniChain, REFERENCE_PLUGINS_DIR, createNetns, kubeletArgs, type NetConfList } from '../helpers/libcni';

const node = `nf-hif-n-${process.pid}`;
const pods = [1, 2, 3].map((i) => `nf-hif-p${i}-${process.pid}`);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nf-hif-'));
const exec = { nodeNetns: `/run/netns/${node}`, path: [REFERENCE_PLUGINS_DIR] };
const ipam = (subnet: string, dir: string) => ({
  type: 'host-local',
  ranges: [[{ subnet }]],
  dataDir: path.join(tmp, dir),
});

let removeNetns: () => void;

test.before(() => {
  removeNetns = createNetns([node, ...pods]);
  // macvlan's master (no dummy module here): a veth pair inside the node netns.
  execFileSync('ip', ['-n', node, 'link', 'add', 'uplink0', 'type', 'veth', 'peer', 'name', 'uplink1']);
  execFileSync('ip', ['-n', node, 'link', 'set', 'uplink0', 'up']);
});

test.after.always(() => {
  removeNetns?.();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** The node netns's links as the agent's linkList() reports them (read with iproute2 here). */
function nodeLinks(): LinkInfo[] {
  const list = JSON.parse(execFileSync('ip', ['-n', node, '-j', '-d', 'link', 'show'], { encoding: 'utf8' })) as {
    ifindex: number;
    ifname: string;
    address?: string;
    link_index?: number;
    link_netnsid?: number;
    linkinfo?: { info_kind?: string };
  }[];
  return list.map((l) => ({
    ifindex: l.ifindex,
    name: l.ifname,
    kind: l.linkinfo?.info_kind ?? '',
    mac: l.address ?? '',
    up: true,
    masterIfindex: 0,
    linkIfindex: l.link_index ?? 0,
    ...(l.link_netnsid !== undefined && { linkNetnsid: l.link_netnsid }),
  }));
}

const rt = (i: number) => ({
  containerId: `c${i}`,
  netns: `/run/netns/${pods[i]}`,
  ifName: 'eth0',
  args: kubeletArgs({ namespace: 'demo', name: `p${i}` }, `c${i}`),
});

interface Result {
  interfaces: { name: string; sandbox?: string }[];
}

test.serial('ptp: the host veth the result names; without it, the veth peer read inside the netns', async (t) => {
  const chain = new CniChain(
    {
      cniVersion: '1.0.0',
      name: 'routed',
      plugins: [{ type: 'ptp', ipMasq: false, ipam: ipam('10.244.8.0/24', 'ptp') }],
    },
    exec,
  );
  const r = (await chain.add(rt(0))) as Result;
  const host = r.interfaces.find((i) => !i.sandbox)!;
  const want = nodeLinks().find((l) => l.name === host.name)!;
  t.deepEqual(await hostInterfaceOf(nodeLinks(), { ...rt(0), prevResult: r }), {
    name: host.name,
    ifindex: want.ifindex,
  });
  const sandboxOnly = { ...r, interfaces: r.interfaces.filter((i) => i.sandbox) };
  t.deepEqual(await hostInterfaceOf(nodeLinks(), { ...rt(0), prevResult: sandboxOnly }), {
    name: host.name,
    ifindex: want.ifindex,
  });
  await chain.del(rt(0));
});

test.serial('bridge: the pod veth (a bridge port), never the bridge the result also lists', async (t) => {
  const list: NetConfList = {
    cniVersion: '1.0.0',
    name: 'bridged',
    plugins: [
      { type: 'bridge', bridge: 'cni-hif0', isGateway: true, ipMasq: false, ipam: ipam('10.244.9.0/24', 'br') },
    ],
  };
  const chain = new CniChain(list, exec);
  const r = (await chain.add(rt(1))) as Result;
  t.deepEqual(r.interfaces.filter((i) => !i.sandbox).length, 2, 'bridge and veth are both host-side entries');
  const found = await hostInterfaceOf(nodeLinks(), { ...rt(1), prevResult: r });
  const [port] = JSON.parse(
    execFileSync('ip', ['-n', node, '-j', 'link', 'show', 'master', 'cni-hif0'], { encoding: 'utf8' }),
  ) as { ifname: string; ifindex: number }[];
  t.deepEqual(found, { name: port.ifname, ifindex: port.ifindex });
  await chain.del(rt(1));
});

test.serial('macvlan: no host interface, the error names the layout', async (t) => {
  const list: NetConfList = {
    cniVersion: '1.0.0',
    name: 'mv',
    plugins: [{ type: 'macvlan', master: 'uplink0', mode: 'bridge', ipam: ipam('10.244.10.0/24', 'mv') }],
  };
  const chain = new CniChain(list, exec);
  const r = await chain.add(rt(2));
  const found = await hostInterfaceOf(nodeLinks(), { ...rt(2), prevResult: r });
  t.true(found instanceof UnsupportedLayoutError);
  t.is(
    (found as Error).message,
    `find host interface of eth0 in /run/netns/${pods[2]}: layout macvlan (eth0) cannot be enforced on: ${SUPPORTED_LAYOUTS}`,
  );
  await chain.del(rt(2));
});

test.serial('a sandbox whose interface is missing: the error says what was looked for', async (t) => {
  const found = await hostInterfaceOf(nodeLinks(), { netns: `/run/netns/${pods[0]}`, ifName: 'eth9' });
  t.true(found instanceof Error);
  t.regex((found as Error).message, new RegExp(`^find host interface of eth9 in /run/netns/${pods[0]}: .*eth9`));
});
