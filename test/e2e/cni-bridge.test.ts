// Bridge layouts (flannel, k3s, Canal, the bridge plugin) with Debian's reference plugins:
// pods that bridge + host-local put on a Linux bridge of a lab node, found by an agent
// without CNI (pod IP -> neighbour MAC -> FDB port, or the port whose veth peer has the
// IP), are enforced on their bridge-port
// veths, never on the bridge: a denied peer is denied and an allowed one allowed, also
// once a /32 route through the bridge device exists.
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ConnectResult } from '../../src/lab/client';
import { labScript, run } from '../../src/lab/exec';
import { pluginBinDir } from '../helpers/cni-bin';
import { CniChain, REFERENCE_PLUGINS_DIR, kubeletArgs } from '../helpers/libcni';
import { ALLOW_A_TO_B, AgentLab, DEMO_NAMESPACE, NODE_N1, allowFrom, demoPod, labConfig } from './helpers/agent-lab';

const BRIDGE = 'cni-nf0';
const GATEWAY = '10.244.9.1';
const pods = ['a', 'b', 'c', 'e'];
const podNetns = (p: string): string => `nf-brl-${p}-${process.pid}`;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nf-brl-'));
let lab: AgentLab;
const servers: ChildProcess[] = [];
const ip: Record<string, string> = {};
const bridgeConf = {
  type: 'bridge',
  bridge: BRIDGE,
  isGateway: true,
  ipMasq: false,
  ipam: { type: 'host-local', ranges: [[{ subnet: '10.244.9.0/24' }]], dataDir: tmp },
};
const sandbox = (p: string) => ({
  containerId: `c-${p}`,
  netns: `/run/netns/${podNetns(p)}`,
  ifName: 'eth0',
  args: kubeletArgs({ namespace: 'demo', name: p }, `c-${p}`),
});

test.before(async () => {
  lab = await AgentLab.up('brl', { 'ns.yaml': DEMO_NAMESPACE, 'node.yaml': NODE_N1, 'netfence.yaml': labConfig() });
  for (const p of pods) await run(['ip', 'netns', 'add', podNetns(p)]);
});

test.after.always(async () => {
  for (const s of servers) s.kill('SIGKILL');
  for (const p of pods) await run(['ip', 'netns', 'del', podNetns(p)]).catch(() => undefined);
  await lab?.down();
  fs.rmSync(tmp, { recursive: true, force: true });
});

interface CniResult {
  interfaces: { name: string; sandbox?: string }[];
  ips: { address: string }[];
}

/** A lab server answering TCP 80 inside a pod netns; resolves once it listens. */
function serve(netns: string, label: string): Promise<void> {
  const child = spawn('ip', ['netns', 'exec', netns, process.execPath, labScript('server'), label, '80/TCP'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  servers.push(child);
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`server in ${netns} exited (${code})`)));
  });
}

/** TCP 80 connects from a pod netns (allow = answered, deny = timed out). */
async function probe(fromNetns: string, ips: string[]): Promise<string[]> {
  const targets = ips.map((ip, i) => ({ id: String(i), ip, port: 80, protocol: 'TCP' }));
  const out = await run(
    ['ip', 'netns', 'exec', fromNetns, process.execPath, labScript('client'), 'connect'],
    JSON.stringify({ timeoutMs: 700, targets }),
  );
  return (JSON.parse(out.stdout) as { results: ConnectResult[] }).results.map((r) => r.verdict);
}

interface InspectEndpoint {
  ifname?: string;
  pod?: string;
  flags: string[];
}

/** Waits until the agent has finished a pass started after `ms` (epoch). */
async function passAfter(ms: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(Date.parse((JSON.parse(await lab.http('/readyz')) as { lastApply?: string }).lastApply ?? '') > ms)) {
    if (Date.now() > deadline) throw new Error(`wait for an agent pass: none since ${new Date(ms).toISOString()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function inspect(): Promise<InspectEndpoint[]> {
  const out = await lab.cli(['inspect', '--json', '--bpffs-root', lab.node().bpffsRoot]);
  return (JSON.parse(out) as { endpoints: InspectEndpoint[] }).endpoints;
}

test.serial(
  'bridge + host-local without CNI: pods enforced on their bridge ports, not the bridge; denied peer denied, allowed peer allowed',
  async (t) => {
    const chain = new CniChain(
      { cniVersion: '1.0.0', name: 'bridged', plugins: [bridgeConf] },
      { nodeNetns: `/run/netns/${lab.node().netns}`, path: [REFERENCE_PLUGINS_DIR] },
    );
    const port: Record<string, string> = {};
    for (const p of ['a', 'b', 'c']) {
      const r = (await chain.add(sandbox(p))) as CniResult;
      ip[p] = r.ips[0].address.split('/')[0];
      port[p] = r.interfaces.find((i) => !i.sandbox && i.name !== BRIDGE)!.name;
      // The node learns a pod's MAC from its first packet to the gateway (its neighbour
      // entry); c sends none: it is found by its veth peer's address.
      if (p !== 'c') await run(['ip', 'netns', 'exec', podNetns(p), 'ping', '-c', '1', '-W', '2', GATEWAY]);
    }
    await serve(podNetns('b'), 'demo/b');
    t.deepEqual(await probe(podNetns('c'), [ip.b]), ['allow'], 'no policy yet: open');

    lab.write('pods.yaml', [...['a', 'b', 'c'].map((p) => demoPod(p, ip[p])), ALLOW_A_TO_B].join('---\n'));
    await lab.startAgent();
    const enforced = async (): Promise<void> => {
      const eps = await inspect();
      for (const p of ['a', 'b', 'c']) {
        const ep = eps.find((e) => e.pod === `demo/${p}`);
        t.is(ep?.ifname, port[p], `demo/${p} on its bridge port`);
        t.false(ep?.flags.includes('local_delivery'), 'bridged: no local delivery');
      }
      t.false(
        eps.some((e) => e.ifname === BRIDGE),
        'never the bridge device',
      );
      t.deepEqual(await probe(podNetns('a'), [ip.b]), ['allow'], 'allowed peer');
      t.deepEqual(await probe(podNetns('c'), [ip.b]), ['deny'], 'denied peer, bridged on the same node');
    };
    await enforced();

    // A /32 through the bridge device (what made the agent attach to the bridge before):
    // the route event runs a pass; the pod stays on its port.
    const before = Date.now();
    await run(['ip', '-n', lab.node().netns, 'route', 'add', `${ip.b}/32`, 'dev', BRIDGE]);
    await passAfter(before);
    await enforced();
  },
);

test.serial(
  'bridge + host-local + netfence-cni: the pod is enforced on its bridge port when ADD returns (denied peer denied, allowed peer allowed); DEL removes it',
  async (t) => {
    // netfence-cni as a runtime finds it: the installed executable first in CNI_PATH
    const bin = pluginBinDir(path.join(tmp, 'bin'));
    const chain = new CniChain(
      {
        cniVersion: '1.0.0',
        name: 'bridged',
        plugins: [bridgeConf, { type: 'netfence-cni', agentSocket: lab.cniSocket() }],
      },
      { nodeNetns: `/run/netns/${lab.node().netns}`, path: [bin, REFERENCE_PLUGINS_DIR] },
    );
    // e accepts TCP 80 from a only; the source knows e without its IP yet (as the API at ADD)
    lab.write('e.yaml', [demoPod('e', undefined), allowFrom('e', 'a')].join('---\n'));
    await lab.ready();
    await serve(podNetns('e'), 'demo/e');
    const r = (await chain.add(sandbox('e'))) as CniResult;
    const eIp = r.ips[0].address.split('/')[0];
    const [fromC, fromA] = await Promise.all([probe(podNetns('c'), [eIp]), probe(podNetns('a'), [eIp])]);
    t.deepEqual(fromC, ['deny'], 'denied peer denied at once');
    t.deepEqual(fromA, ['allow'], 'allowed peer allowed');
    const port = r.interfaces.find((i) => !i.sandbox && i.name !== BRIDGE)!.name;
    t.is((await inspect()).find((e) => e.pod === 'demo/e')?.ifname, port, 'on its bridge port');
    await chain.del(sandbox('e'));
    t.false((await run(['ip', '-n', lab.node().netns, 'link', 'show'])).stdout.includes(port), 'the port is gone');
  },
);
