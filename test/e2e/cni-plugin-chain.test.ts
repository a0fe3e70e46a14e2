// netfence-cni (the installed executable) chained behind Debian's reference plugins (ptp +
// host-local) and run the way libcni runs a conflist (test/helpers/libcni.ts), against a
// real agent on a lab node: VERSION, ADD, CHECK, STATUS and DEL per spec 1.0 and 1.1, and
// what the chain does when the agent is down or hung. Debian's plugins speak at most 1.0.0,
// so spec 1.1 (STATUS, CHECK in 1.1) runs netfence-cni alone with the chain's result.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentSocket } from '../../src/agent/agent-socket';
import { pluginBinDir } from '../helpers/cni-bin';
import {
  CniChain,
  CniError,
  REFERENCE_PLUGINS_DIR,
  execPlugin,
  kubeletArgs,
  type NetConfList,
  type RuntimeConf,
} from '../helpers/libcni';
import { AgentLab, demoPod, demoPodsAbc, labConfig } from './helpers/agent-lab';

const POD_IP = '10.244.1.20';
const podNs = `nf-cnic-p-${process.pid}`;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nf-cnic-'));
// A CNI_PATH directory holding netfence-cni as the installer lays it out.
const pluginDir = path.join(tmp, 'bin');

let lab: AgentLab;

test.before(async () => {
  pluginBinDir(pluginDir);
  execFileSync('ip', ['netns', 'add', podNs]);
  lab = await AgentLab.up('cnichain', { 'pods.yaml': demoPodsAbc(), 'netfence.yaml': labConfig() });
  lab.write('d.yaml', demoPod('d', POD_IP));
  await lab.startAgent();
});

test.after.always(async () => {
  await lab?.down();
  try {
    execFileSync('ip', ['netns', 'del', podNs], { stdio: 'ignore' });
  } catch {
    /* already gone */
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

const exec = () => ({ nodeNetns: `/run/netns/${lab.node().netns}`, path: [pluginDir, REFERENCE_PLUGINS_DIR] });

/** ptp + host-local handing out exactly POD_IP, then netfence-cni asking `socket`. */
function chain(socket: string, extra: Record<string, unknown> = {}): CniChain {
  const ipam = {
    type: 'host-local',
    ranges: [[{ subnet: '10.244.1.0/24', rangeStart: POD_IP, rangeEnd: POD_IP }]],
    dataDir: path.join(tmp, 'ipam'),
  };
  const list: NetConfList = {
    cniVersion: '1.0.0',
    name: 'routed',
    plugins: [
      { type: 'ptp', ipMasq: false, ipam },
      { type: 'netfence-cni', agentSocket: socket, agentTimeoutMs: 10_000, ...extra },
    ],
  };
  return new CniChain(list, exec());
}

/** Pod demo/d's sandbox; torn down by a chain DEL (through an agent-less chain) if the test fails. */
function sandbox(t: { teardown(fn: () => unknown): void }, containerId: string): RuntimeConf {
  const rt = {
    containerId,
    netns: `/run/netns/${podNs}`,
    ifName: 'eth0',
    args: kubeletArgs({ namespace: 'demo', name: 'd' }, containerId),
  };
  t.teardown(() =>
    chain(path.join(tmp, 'nobody.sock'))
      .del(rt)
      .catch(() => undefined),
  );
  return rt;
}

/** netfence-cni alone, one command, config `conf` (no runtime conf for VERSION/STATUS). */
const nfcni = (command: string, conf: Record<string, unknown>, rt?: RuntimeConf) =>
  execPlugin(exec(), 'netfence-cni', command, { name: 'routed', type: 'netfence-cni', ...conf }, rt);

async function rejection(p: Promise<unknown>): Promise<CniError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof CniError)) throw new Error(`expected a CNI error, got ${String(err)}`);
  return err;
}

test.serial('VERSION: with and without a config, in a version it speaks, like the reference plugins', async (t) => {
  for (const stdin of [undefined, { cniVersion: '1.0.0' }, { cniVersion: '1.1.0' }, { cniVersion: '9.9.9' }]) {
    const { result } = await execPlugin(exec(), 'netfence-cni', 'VERSION', stdin);
    const want = stdin?.cniVersion === '1.0.0' ? '1.0.0' : '1.1.0';
    t.deepEqual(
      result,
      { cniVersion: want, supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] },
      JSON.stringify(stdin),
    );
  }
  const ptp = (await execPlugin(exec(), 'ptp', 'VERSION', { cniVersion: '1.0.0' })).result as {
    supportedVersions: string[];
  };
  t.true(ptp.supportedVersions.includes('1.0.0'), 'the chain has a common version');
});

test.serial(
  'spec 1.0: ADD returns once the agent enforces the pod, CHECK and DEL through the whole chain',
  async (t) => {
    const c = chain(lab.cniSocket());
    const rt = sandbox(t, 'c-d-10');
    const result = (await c.add(rt)) as {
      cniVersion: string;
      ips: { address: string }[];
      interfaces: { name: string; sandbox?: string }[];
    };
    t.is(result.cniVersion, '1.0.0');
    t.deepEqual(
      result.ips.map((i) => i.address),
      [`${POD_IP}/24`],
      'the result passes through netfence-cni unchanged',
    );
    const inspect = JSON.parse(await lab.cli(['inspect', '--json', '--bpffs-root', lab.node().bpffsRoot])) as {
      endpoints: { ifname?: string; pod?: string }[];
    };
    const hostIf = result.interfaces.find((i) => !i.sandbox)!.name;
    t.true(
      inspect.endpoints.some((e) => e.pod === 'demo/d' && e.ifname === hostIf),
      `the agent programs the ptp veth ${hostIf} by the time ADD returns`,
    );
    await c.check(rt);
    await c.status(); // a 1.0 list: libcni sends no STATUS, nor does the driver
    t.is(c.invocations.filter((i) => i.command === 'STATUS').length, 0);
    await c.del(rt);
    t.deepEqual(
      c.invocations.map((i) => `${i.command} ${i.plugin}`),
      ['ADD ptp', 'ADD netfence-cni', 'CHECK ptp', 'CHECK netfence-cni', 'DEL netfence-cni', 'DEL ptp'],
    );
  },
);

test.serial(
  'spec 1.1: STATUS asks the agent, CHECK judges the cached result, GC takes libcni keys; older versions are refused STATUS and CHECK',
  async (t) => {
    const c = chain(lab.cniSocket());
    const rt = sandbox(t, 'c-d-11');
    const prevResult = { ...((await c.add(rt)) as object), cniVersion: '1.1.0' };
    const conf = { cniVersion: '1.1.0', agentSocket: lab.cniSocket() };
    t.is((await nfcni('STATUS', conf)).result, undefined, 'STATUS succeeds with no output');
    t.is((await nfcni('CHECK', { ...conf, prevResult }, rt)).result, undefined);
    const attachments = [{ containerID: rt.containerId, ifname: 'eth0' }];
    const gc = { ...conf, 'cni.dev/valid-attachments': attachments, 'cni.dev/attachments': attachments };
    t.is((await nfcni('GC', gc)).result, undefined, "GC with libcni's attachment keys");
    t.is((await rejection(nfcni('STATUS', { ...conf, cniVersion: '1.0.0' }))).code, 1, 'STATUS is a 1.1 command');
    t.is(
      (await rejection(nfcni('CHECK', { ...conf, cniVersion: '0.3.1', prevResult }, rt))).code,
      1,
      'CHECK is a 0.4.0 command',
    );
    const down = await rejection(nfcni('STATUS', { ...conf, agentSocket: path.join(tmp, 'nobody.sock') }));
    t.is(down.code, 50, 'agent down: not available');
    t.regex(down.msg, /netfence agent unreachable/);
    await c.del(rt);
    const gone = await rejection(nfcni('CHECK', { ...conf, prevResult }, rt));
    t.is(gone.code, 101, `after DEL the endpoint is not enforced: ${gone.message}`);
  },
);

test.serial('agent down: ADD fails and undoes the chain; DEL succeeds at once', async (t) => {
  const c = chain(path.join(tmp, 'nobody.sock'));
  const rt = sandbox(t, 'c-d-down');
  const err = await rejection(c.add(rt));
  t.like(err, { plugin: 'netfence-cni', code: 11 });
  t.regex(err.msg, /program endpoint demo\/d: netfence agent unreachable/);
  // The runtime cleans up a failed ADD with a DEL of the whole chain.
  const started = Date.now();
  await c.del(rt);
  t.true(Date.now() - started < 3000, `DEL took ${Date.now() - started} ms`);
  t.deepEqual(
    JSON.parse(execFileSync('ip', ['-n', podNs, '-j', 'link', 'show'], { encoding: 'utf8' })).map(
      (l: { ifname: string }) => l.ifname,
    ),
    ['lo'],
    'ptp DEL ran after netfence-cni',
  );
});

test.serial('a hung agent holds DEL at most 2 s; ADD waits for its timeout and fails', async (t) => {
  const hung = path.join(tmp, 'hung.sock');
  const never = () => new Promise<never>(() => {});
  const server = new AgentSocket({ add: never, del: never, check: never, flows: (s) => s.end() });
  await server.listen(hung);
  t.teardown(() => server.close());
  const c = chain(hung, { agentTimeoutMs: 600 });
  const rt = sandbox(t, 'c-d-hung');
  const err = await rejection(c.add(rt));
  t.regex(err.details, /no answer within 600 ms/);
  await c.del(rt);
  const slowDel = chain(hung, { agentTimeoutMs: 60_000 });
  const started = Date.now();
  await slowDel.del(rt);
  const ms = Date.now() - started;
  t.true(ms >= 2000 && ms < 4000, `DEL with a 60 s agent timeout took ${ms} ms`);
});
