// netfence-cni run the way a container runtime runs it (env + config on stdin), against
// a real network namespace with a veth pair and an agent-side AgentSocket whose handler
// inspects what it is asked about.
import test from 'ava';
import { execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type net from 'node:net';
import { promisify } from 'node:util';
import type { CniRequest } from '../../src/agent/cni-protocol';
import { AgentSocket, type AgentSocketHandler } from '../../src/agent/agent-socket';

const run = promisify(execFile);
const plugin = path.resolve(__dirname, '../../netfence-cni.js'); // the bundle that ships
const hostNs = `nf-cnih-${process.pid}`;
const podNs = `nf-cnic-${process.pid}`;
const podNsPath = `/run/netns/${podNs}`;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nf-cni-'));

const prevResult = {
  cniVersion: '1.0.0',
  interfaces: [
    { name: 'nfh0', mac: '0a:58:0a:f4:00:01' },
    { name: 'eth0', mac: '0a:58:0a:f4:00:02', sandbox: podNsPath },
  ],
  ips: [{ address: '10.244.0.2/24', gateway: '10.244.0.1', interface: 1 }],
  routes: [{ dst: '0.0.0.0/0' }],
  dns: { nameservers: ['10.96.0.10'], search: ['default.svc.cluster.local'] },
};

test.before(() => {
  execFileSync('ip', ['netns', 'add', hostNs]);
  execFileSync('ip', ['netns', 'add', podNs]);
  execFileSync('ip', ['-n', hostNs, 'link', 'add', 'nfh0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', podNs]);
});

test.after.always(() => {
  for (const ns of [hostNs, podNs]) {
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      /* already gone */
    }
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

interface LinkJson {
  ifname: string;
  ifindex: number;
  link_index?: number;
  link_type?: string;
}

/** The host-side veth of ifName inside netns: what a real agent must find to program. */
async function hostPeerOf(netnsPath: string, ifName: string): Promise<string> {
  const inPod = JSON.parse((await run('nsenter', [`--net=${netnsPath}`, 'ip', '-j', '-d', 'link', 'show', 'dev', ifName])).stdout) as LinkJson[];
  const peerIndex = inPod[0]?.link_index;
  if (!peerIndex) throw new Error(`find host peer of ${ifName} in ${netnsPath}: not a veth`);
  const host = JSON.parse((await run('ip', ['-n', hostNs, '-j', 'link', 'show'])).stdout) as LinkJson[];
  const peer = host.find((l) => l.ifindex === peerIndex);
  if (!peer) throw new Error(`find host peer of ${ifName} in ${netnsPath}: ifindex ${peerIndex} not in ${hostNs}`);
  return peer.ifname;
}

/** An agent that "programs" endpoints by remembering them, after checking the veth exists. */
class RecordingAgent implements AgentSocketHandler {
  readonly requests: CniRequest[] = [];
  readonly programmed = new Map<string, string>(); // containerId -> host veth
  refuse?: string;
  hang = false;

  async add(req: CniRequest): Promise<void> {
    this.requests.push(req);
    if (this.hang) return new Promise<void>(() => {});
    if (this.refuse) throw new Error(this.refuse);
    this.programmed.set(req.containerId, await hostPeerOf(req.netns, req.ifName));
  }
  async del(req: CniRequest): Promise<void> {
    this.requests.push(req);
    this.programmed.delete(req.containerId);
  }
  async check(req: CniRequest): Promise<boolean> {
    this.requests.push(req);
    return this.programmed.has(req.containerId);
  }
  flows(sock: net.Socket): void {
    sock.end(); // the plugin never subscribes
  }
}

let seq = 0;
async function startAgent(t: { teardown(fn: () => unknown): void }): Promise<{ agent: RecordingAgent; socket: string }> {
  const agent = new RecordingAgent();
  const socket = path.join(tmp, `agent-${seq++}.sock`);
  const server = new AgentSocket(agent);
  await server.listen(socket);
  t.teardown(() => server.close());
  return { agent, socket };
}

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function invoke(command: string, conf: object, env: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [plugin], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        CNI_COMMAND: command,
        CNI_CONTAINERID: 'c0ffee01',
        CNI_NETNS: podNsPath,
        CNI_IFNAME: 'eth0',
        CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=c0ffee01',
        CNI_PATH: '/opt/cni/bin',
        ...env,
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(JSON.stringify(conf));
  });
}

const conf = (socket: string, extra: object = {}) => ({
  cniVersion: '1.0.0',
  name: 'k8s-pod-network',
  type: 'netfence-cni',
  agentSocket: socket,
  agentTimeoutMs: 2000,
  prevResult,
  ...extra,
});

test('ADD programs the endpoint before returning and passes prevResult through', async (t) => {
  const { agent, socket } = await startAgent(t);
  const r = await invoke('ADD', conf(socket));
  t.is(r.code, 0, r.stdout + r.stderr);
  t.is(r.stdout.trim(), JSON.stringify(prevResult), 'prevResult not passed through verbatim');
  t.is(agent.programmed.get('c0ffee01'), 'nfh0', 'handler did not find the host-side veth');
  const req = agent.requests[0];
  t.like(req, { op: 'add', containerId: 'c0ffee01', netns: podNsPath, ifName: 'eth0', network: 'k8s-pod-network', podNamespace: 'shop', podName: 'web-0' });
  t.deepEqual(req.prevResult, prevResult);
});

test('the agent socket is mode 0600 and a stale socket file is replaced', async (t) => {
  const { socket } = await startAgent(t);
  t.is(fs.statSync(socket).mode & 0o777, 0o600);
  // A live socket is never stolen.
  await t.throwsAsync(new AgentSocket(new RecordingAgent()).listen(socket), { message: /another process is serving it/ });
  // A socket file left by a killed agent is.
  const stale = path.join(tmp, 'stale.sock');
  const killed = spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`]);
  t.is(killed.signal, 'SIGKILL');
  t.true(fs.statSync(stale).isSocket());
  const server = new AgentSocket(new RecordingAgent());
  await server.listen(stale);
  t.teardown(() => server.close());
  t.is(fs.statSync(stale).mode & 0o777, 0o600);
});

test('agent down: ADD fails closed with a CNI error; failOpen lets the pod start', async (t) => {
  const socket = path.join(tmp, 'nobody-home.sock');
  const r = await invoke('ADD', conf(socket));
  t.not(r.code, 0);
  const err = JSON.parse(r.stdout) as { cniVersion: string; code: number; msg: string; details: string };
  t.is(err.cniVersion, '1.0.0');
  t.is(err.code, 11);
  t.regex(err.msg, /program endpoint shop\/web-0: netfence agent unreachable/);
  t.regex(err.details, /nobody-home\.sock/);

  const open = await invoke('ADD', conf(socket, { failOpen: true }));
  t.is(open.code, 0);
  t.deepEqual(JSON.parse(open.stdout), prevResult);
  t.regex(open.stderr, /failOpen/);
});

test('agent refuses: ADD fails even with failOpen; an agent that never answers times out', async (t) => {
  const { agent, socket } = await startAgent(t);
  agent.refuse = 'map nf_endpoints is full';
  const r = await invoke('ADD', conf(socket, { failOpen: true }));
  t.is(r.code, 1);
  const err = JSON.parse(r.stdout) as { code: number; msg: string; details: string };
  t.is(err.code, 100);
  t.regex(err.details, /map nf_endpoints is full/);

  agent.refuse = undefined;
  agent.hang = true;
  const started = Date.now();
  const slow = await invoke('ADD', conf(socket, { agentTimeoutMs: 300 }));
  t.is(slow.code, 1);
  t.regex((JSON.parse(slow.stdout) as { details: string }).details, /no answer within 300 ms/);
  t.true(Date.now() - started < 5000);
});

test('CHECK reports programmed state; DEL is idempotent and succeeds without an agent', async (t) => {
  const { agent, socket } = await startAgent(t);
  t.is((await invoke('ADD', conf(socket))).code, 0);
  t.is((await invoke('CHECK', conf(socket))).code, 0);
  const d1 = await invoke('DEL', conf(socket, { prevResult: undefined }), { CNI_NETNS: '' });
  const d2 = await invoke('DEL', conf(socket, { prevResult: undefined }), { CNI_NETNS: '' });
  t.deepEqual([d1.code, d2.code, d1.stdout, d2.stdout], [0, 0, '', '']);
  t.is(agent.requests.filter((r) => r.op === 'del').length, 2);
  t.false(agent.programmed.has('c0ffee01'));
  const c = await invoke('CHECK', conf(socket));
  t.is(c.code, 1);
  t.is((JSON.parse(c.stdout) as { code: number }).code, 101);
  const gone = await invoke('DEL', conf(path.join(tmp, 'nobody.sock')));
  t.is(gone.code, 0);
});

test('VERSION, bad versions, bad config and missing environment', async (t) => {
  const v = await invoke('VERSION', { cniVersion: '1.1.0' });
  t.is(v.code, 0);
  const out = JSON.parse(v.stdout) as { cniVersion: string; supportedVersions: string[] };
  t.is(out.cniVersion, '1.1.0');
  for (const want of ['0.4.0', '1.0.0', '1.1.0']) t.true(out.supportedVersions.includes(want));

  const old = await invoke('ADD', { ...conf('/nonexistent'), cniVersion: '0.1.0' });
  t.is((JSON.parse(old.stdout) as { code: number }).code, 1);
  const bad = await invoke('ADD', conf('/nonexistent', { failOpen: 'yes' }));
  t.like(JSON.parse(bad.stdout), { code: 7, msg: 'read network config: failOpen: must be a boolean' });
  const noPrev = await invoke('ADD', conf('/nonexistent', { prevResult: undefined }));
  t.regex((JSON.parse(noPrev.stdout) as { msg: string }).msg, /prevResult: required/);
  const noNs = await invoke('ADD', conf('/nonexistent'), { CNI_NETNS: '' });
  t.like(JSON.parse(noNs.stdout), { code: 4, msg: 'read environment: CNI_NETNS: required' });
  t.not(noNs.code, 0);
  const typo = await invoke('ADD', conf('/nonexistent', { agentTimeout: 5, failopen: true }));
  t.like(JSON.parse(typo.stdout), { code: 7, msg: 'read network config: agentTimeout, failopen: unknown keys' });
  const future = await invoke('ADD', { ...conf('/nonexistent'), cniVersion: '9.9.9' });
  t.like(JSON.parse(future.stdout), { cniVersion: '1.1.0', code: 1 }, 'answered in a version it speaks');
});

test('missing pod reference: ADD and CHECK fail at once without asking the agent; DEL goes by container ID', async (t) => {
  const { agent, socket } = await startAgent(t);
  for (const [command, args] of [
    ['ADD', ''],
    ['CHECK', 'IgnoreUnknown=1;K8S_POD_NAMESPACE=shop'],
  ]) {
    const r = await invoke(command, conf(socket), { CNI_ARGS: args });
    t.is(r.code, 1);
    const want = args ? 'K8S_POD_NAME required' : 'K8S_POD_NAMESPACE and K8S_POD_NAME required';
    t.like(JSON.parse(r.stdout), { code: 4, msg: `read environment: CNI_ARGS: ${want}` });
  }
  t.deepEqual(agent.requests, []);
  const d = await invoke('DEL', conf(socket), { CNI_ARGS: '' });
  t.is(d.code, 0);
  t.like(agent.requests, [{ op: 'del', containerId: 'c0ffee01', podName: '' }]);
});
