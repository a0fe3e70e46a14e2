// The libcni-equivalent driver (test/helpers/libcni.ts) against Debian's reference CNI
// plugins in private network namespaces: the routed (ptp) and bridged (bridge) layouts come
// up as those plugins really build them, and go away on DEL. Tests of netfence-cni chained
// behind them build on this.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CniChain, REFERENCE_PLUGINS_DIR, execPlugin, kubeletArgs, type NetConfList } from '../helpers/libcni';

const node = `nf-cnir-n-${process.pid}`;
const pods = [1, 2].map((i) => `nf-cnir-p${i}-${process.pid}`);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nf-cnir-'));
const exec = { nodeNetns: `/run/netns/${node}`, path: [REFERENCE_PLUGINS_DIR] };

const ipam = (subnet: string, dir: string) => ({
  type: 'host-local',
  ranges: [[{ subnet }]],
  dataDir: path.join(tmp, dir),
});

test.before(() => {
  for (const ns of [node, ...pods]) execFileSync('ip', ['netns', 'add', ns]);
  execFileSync('ip', ['-n', node, 'link', 'set', 'lo', 'up']);
});

test.after.always(() => {
  for (const ns of [node, ...pods]) {
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      /* already gone */
    }
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

const ipJson = (
  ns: string,
  ...args: string[]
): { ifname?: string; dst?: string; dev?: string; master?: string; addr_info?: { local: string }[] }[] =>
  JSON.parse(execFileSync('ip', ['-n', ns, '-j', ...args], { encoding: 'utf8' }) || '[]');

test.serial('reference plugins answer VERSION with the spec versions they support', async (t) => {
  for (const type of ['ptp', 'bridge', 'host-local']) {
    const { result } = await execPlugin(exec, type, 'VERSION', { cniVersion: '1.0.0' });
    t.true((result as { supportedVersions: string[] }).supportedVersions.includes('1.0.0'), type);
  }
});

test.serial('ptp + host-local: a /32 route per pod toward its host veth; DEL removes it', async (t) => {
  const list: NetConfList = {
    cniVersion: '1.0.0',
    name: 'routed',
    plugins: [{ type: 'ptp', ipMasq: false, ipam: ipam('10.244.8.0/24', 'ptp') }],
  };
  const chain = new CniChain(list, exec);
  const rt = {
    containerId: 'c-ptp',
    netns: `/run/netns/${pods[0]}`,
    ifName: 'eth0',
    args: kubeletArgs({ namespace: 'demo', name: 'p1' }, 'c-ptp'),
  };
  const result = (await chain.add(rt)) as {
    interfaces: { name: string; sandbox?: string }[];
    ips: { address: string }[];
  };
  const host = result.interfaces.find((i) => !i.sandbox)!;
  t.truthy(host, 'the result names the host-side interface');
  const ip = result.ips[0].address.split('/')[0];
  t.deepEqual(
    ipJson(pods[0], '-4', 'addr', 'show', 'dev', 'eth0')[0].addr_info?.map((a) => a.local),
    [ip],
  );
  t.true(
    ipJson(node, 'route', 'show', `${ip}/32`).some((r) => r.dev === host.name),
    'a /32 route toward the host veth',
  );
  await chain.check(rt);
  await chain.del(rt);
  t.deepEqual(ipJson(node, 'route', 'show', `${ip}/32`), []);
  t.deepEqual(
    ipJson(pods[0], 'link', 'show').map((l) => l.ifname),
    ['lo'],
  );
});

test.serial('bridge + host-local: pods are bridge ports behind one subnet route, no /32', async (t) => {
  const list: NetConfList = {
    cniVersion: '1.0.0',
    name: 'bridged',
    plugins: [
      { type: 'bridge', bridge: 'cni-nf0', isGateway: true, ipMasq: false, ipam: ipam('10.244.9.0/24', 'bridge') },
    ],
  };
  const chain = new CniChain(list, exec);
  const rts = pods.map((ns, i) => ({
    containerId: `c-br${i}`,
    netns: `/run/netns/${ns}`,
    ifName: 'eth0',
    args: kubeletArgs({ namespace: 'demo', name: `b${i}` }, `c-br${i}`),
  }));
  const hosts: string[] = [];
  for (const rt of rts) {
    const r = (await chain.add(rt)) as { interfaces: { name: string; sandbox?: string }[] };
    hosts.push(r.interfaces.find((i) => !i.sandbox && i.name !== 'cni-nf0')!.name);
  }
  const ports = ipJson(node, 'link', 'show', 'master', 'cni-nf0').map((l) => l.ifname);
  t.deepEqual(ports.sort(), [...hosts].sort(), 'each pod veth is a port of the bridge');
  t.true(
    ipJson(node, 'route', 'show').some((r) => r.dst === '10.244.9.0/24' && r.dev === 'cni-nf0'),
    'one subnet route on the bridge',
  );
  t.false(
    ipJson(node, 'route', 'show').some((r) => r.dst?.startsWith('10.244.9.') && r.dst !== '10.244.9.0/24'),
    'no per-pod route',
  );
  for (const rt of rts.reverse()) await chain.del(rt);
  t.deepEqual(ipJson(node, 'link', 'show', 'master', 'cni-nf0'), []);
});
