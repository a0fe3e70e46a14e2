// The agent's life on a lab node with real pods: one agent per bpffs root (a second one
// exits at once naming the first), `netfence flows` clients fed by the agent (each gets
// every drop), SIGTERM honoured within 2 s mid-load and mid-pass with enforcement left
// pinned, no ExperimentalWarning at start, and a start under `ip netns exec` (which hides
// the host's bpffs) that mounts its own instead of spinning.
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { agentSocketPath } from '../../src/agent/agent-socket';
import type { FlowRecord } from '../../src/agent/flows';
import { run } from '../../src/lab/exec';
import { AgentLab, demoPodsAbc, labConfig } from './helpers/agent-lab';

const cli = path.resolve(__dirname, '../../src/cli/main.js');

const ISOLATE_B = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: isolate-b, namespace: demo }
spec: { podSelector: { matchLabels: { app: b } }, policyTypes: [Ingress] }
`;

/** `count` policies that each let one address (never a pod's) reach c: a pass of real weight. */
function manyPolicies(count: number): string {
  return Array.from(
    { length: count },
    (_, i) => `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: many-${i}, namespace: demo }
spec:
  podSelector: { matchLabels: { app: c } }
  ingress: [{ from: [{ ipBlock: { cidr: 172.${16 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32 } }], ports: [{ port: ${1000 + (i % 5000)} }] }
`,
  ).join('---\n');
}

const A_TO_B = { from: 'demo/a', to: 'demo/b', port: '80/TCP' };
const C_TO_A = { from: 'demo/c', to: 'demo/a', port: '80/TCP' };

let lab: AgentLab;

test.before(async () => {
  lab = await AgentLab.up('lifecycle', {
    'pods.yaml': demoPodsAbc(),
    'netfence.yaml': labConfig(),
    'isolate-b.yaml': ISOLATE_B,
  });
});
test.after.always(async () => {
  await lab?.down();
});

interface Child {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<{ code: number | null; at: number }>;
}

function start(argv: string[]): Child {
  const proc = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d));
  proc.stderr!.on('data', (d: Buffer) => (err += d));
  const exit = new Promise<{ code: number | null; at: number }>((resolve) =>
    proc.once('exit', (code) => resolve({ code, at: Date.now() })),
  );
  return { proc, stdout: () => out, stderr: () => err, exit };
}

async function until(what: string, ok: () => boolean, timeoutMs = 60_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !ok(); await new Promise((r) => setTimeout(r, 10))) {
    if (Date.now() > deadline) throw new Error(`wait for ${what}: timed out`);
  }
}

const msgs = (node = 'n1'): unknown[] => lab.agentRecords(node).map((r) => r.msg);

test.serial(
  'a second agent on the same bpffs root exits at once naming the first; the first keeps enforcing',
  async (t) => {
    const first = await lab.startAgent();
    t.false(lab.agentLog().includes('ExperimentalWarning'), "no Node experimental API on the agent's path");
    t.deepEqual(await lab.probe([A_TO_B, C_TO_A]), ['deny', 'allow']);

    const { netns, bpffsRoot } = lab.node();
    const started = Date.now();
    const second = start([
      'nsenter',
      `--net=/run/netns/${netns}`,
      process.execPath,
      cli,
      'agent',
      '--state',
      lab.stateDir,
      '--node',
      'n1',
      '--bpffs-root',
      bpffsRoot,
      '--metrics-address',
      '127.0.0.1:9402',
    ]);
    const { code, at } = await second.exit;
    t.is(code, 1);
    t.log(`second agent exited after ${at - started} ms`);
    t.true(at - started < 15_000, 'exits, never waits');
    t.notRegex(second.stdout(), /loading datapath/, 'exits at once: before loading anything');
    t.is(
      second.stderr().trim(),
      `netfence: lock bpffs root ${bpffsRoot}: another netfence agent (pid ${first.pid}) enforces from it; one agent per bpffs root`,
    );

    process.kill(first.pid, 0); // still alive
    t.deepEqual(await lab.probe([A_TO_B, C_TO_A]), ['deny', 'allow'], 'still enforced');
    lab.write('isolate-a.yaml', ISOLATE_B.replace('isolate-b', 'isolate-a').replace('app: b', 'app: a'));
    await lab.ready();
    t.deepEqual(await lab.probe([A_TO_B, C_TO_A]), ['deny', 'deny'], 'the first agent still applies changes');
    lab.remove('isolate-a.yaml');
    await lab.ready();
  },
);

test.serial(
  'netfence flows clients get every drop from the agent: two clients, 6 drops each, then they exit',
  async (t) => {
    const { bpffsRoot } = lab.node();
    t.is(
      fs.statSync(agentSocketPath(bpffsRoot)).mode & 0o777,
      0o600,
      'the agent socket in its run directory is root-only',
    );
    // No --socket: the client finds the agent's socket from the bpffs root.
    const clients = [0, 1].map(() =>
      start([process.execPath, cli, 'flows', '--json', '--count', '6', '--bpffs-root', bpffsRoot]),
    );
    t.teardown(() => clients.forEach((c) => c.proc.kill()));
    await until('both clients to subscribe', () => clients.every((c) => c.stderr().includes('following')));

    t.deepEqual(await lab.probe(Array(6).fill(A_TO_B)), Array(6).fill('deny'));
    let timer: NodeJS.Timeout | undefined;
    const exits = await Promise.race([
      Promise.all(clients.map((c) => c.exit)),
      new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), 15_000))),
    ]);
    clearTimeout(timer);
    t.truthy(
      exits,
      `clients ended after 6 records: ${clients.map((c) => c.stdout().split('\n').length - 1).join(', ')} lines`,
    );
    t.deepEqual(
      exits?.map((e) => e.code),
      [0, 0],
      clients.map((c) => c.stderr()).join('\n'),
    );
    const records = clients.map((c) =>
      c
        .stdout()
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as FlowRecord),
    );
    t.is(records[0].length, 6);
    t.deepEqual(records[1], records[0], 'both clients got the same records');
    for (const f of records[0]) {
      t.like(f, {
        verdict: 'DROPPED',
        traffic_direction: 'INGRESS',
        source: { namespace: 'demo', pod_name: 'a' },
        destination: { namespace: 'demo', pod_name: 'b' },
        l4: { TCP: { destination_port: 80 } },
      });
    }
  },
);

test.serial('SIGTERM mid-load and mid-pass: the agent exits within 2 s; the pins keep enforcing', async (t) => {
  const { bpffsRoot } = lab.node();
  const cpuMs = (pid: number): number => {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime + stime, in clock ticks of 10 ms
  };
  // SIGTERM once `busy` says the agent is at it; `done` (if it comes at all) must be logged
  // after the signal was sent: the signal arrived while that work ran.
  const stopWhen = async (pid: number, what: string, busy: () => boolean, done: string): Promise<void> => {
    const from = msgs().length;
    await until(what, busy);
    const sent = Date.now();
    process.kill(pid, 'SIGTERM');
    await until(
      'the agent to exit',
      () => !fs.existsSync(`/proc/${pid}`) || /^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')),
      5000,
    );
    const ms = Date.now() - sent;
    t.log(`SIGTERM ${what}: exited in ${ms} ms`);
    t.true(ms < 2000, `exited ${ms} ms after SIGTERM ${what}`);
    const finished = lab
      .agentRecords()
      .slice(from)
      .find((r) => r.msg === done);
    t.true(finished === undefined || (finished.time as number) >= sent, `SIGTERM came before "${done}"`);
    t.true(fs.existsSync(path.join(bpffsRoot, 'nf_endpoints')), 'pins stay');
    t.deepEqual(await lab.probe([A_TO_B, C_TO_A]), ['deny', 'allow'], `enforced after SIGTERM ${what}`);
  };
  await lab.kill('SIGTERM');
  await lab.startAgent(); // (also when this test runs alone) the pins exist
  await lab.kill('SIGTERM');

  // Without its program pins the agent loads the object again (the verifier).
  fs.rmSync(path.join(bpffsRoot, 'progs'), { recursive: true });
  const from = msgs().length;
  const loading = lab.spawnAgent();
  await stopWhen(loading, 'mid-load', () => msgs().slice(from).includes('loading datapath'), 'datapath loaded');

  // A running agent gets many policies: reading and applying them takes it seconds of CPU.
  const { pid } = await lab.startAgent();
  const idle = cpuMs(pid);
  lab.write('many.yaml', manyPolicies(8000));
  await stopWhen(pid, 'mid-pass', () => cpuMs(pid) - idle > 500, 'reconciled');
  lab.remove('many.yaml');
  await lab.startAgent();
  t.deepEqual(await lab.probe([A_TO_B, C_TO_A]), ['deny', 'allow']);
});

test.serial(
  'under ip netns exec (bpffs hidden) the agent mounts its own bpffs and serves; without the right to mount it exits naming what to mount',
  async (t) => {
    const ns = `nf-lc-hidden-${process.pid}`;
    await run(['ip', 'netns', 'add', ns]);
    t.teardown(() => run(['ip', 'netns', 'del', ns]).catch(() => undefined));
    await run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    const root = `/sys/fs/bpf/nf-lc-hidden-${process.pid}`;
    t.teardown(() => fs.rmSync(path.dirname(agentSocketPath(root)), { recursive: true, force: true }));
    const agentArgs = [
      process.execPath,
      cli,
      'agent',
      '--state',
      lab.stateDir,
      '--node',
      'n1',
      '--bpffs-root',
      root,
      '--metrics-address',
      '127.0.0.1:9402',
    ];

    const agent = start(['ip', 'netns', 'exec', ns, ...agentArgs]);
    t.teardown(() => agent.proc.kill('SIGKILL'));
    await until('the agent to start', () => agent.stdout().includes('agent started') || agent.proc.exitCode !== null);
    t.regex(agent.stdout(), /mounted a bpffs at \/sys\/fs\/bpf/, agent.stderr());
    const script = `require('http').get('http://127.0.0.1:9402/readyz',r=>{let b='';r.on('data',d=>b+=d);r.on('end',()=>process.stdout.write(r.statusCode+' '+b))})`;
    let ready = '';
    for (const deadline = Date.now() + 20_000; !ready.startsWith('200') && Date.now() < deadline;) {
      ready = (await run(['ip', 'netns', 'exec', ns, process.execPath, '-e', script])).stdout;
      if (!ready.startsWith('200')) await new Promise((r) => setTimeout(r, 100));
    }
    t.regex(ready, /^200 /, 'ready, with health and metrics served');
    t.false(fs.existsSync(root), 'the bpffs it mounted is private to its mount namespace');
    agent.proc.kill('SIGTERM');
    t.is((await agent.exit).code, 0);

    const started = Date.now();
    const denied = start([
      'ip',
      'netns',
      'exec',
      ns,
      'setpriv',
      '--inh-caps=-sys_admin',
      '--bounding-set=-sys_admin',
      ...agentArgs,
    ]);
    t.teardown(() => denied.proc.kill('SIGKILL'));
    const { code, at } = await denied.exit;
    t.is(code, 1);
    t.true(at - started < 15_000, `exited after ${at - started} ms: no spin`);
    t.notRegex(denied.stdout(), /loading datapath/);
    t.regex(
      denied.stderr(),
      new RegExp(
        `bpffs root ${root}: /sys/fs/bpf is sysfs, not a bpffs, and mounting one failed \\(mount bpffs at /sys/fs/bpf: Operation not permitted\\): mount one first: mount -t bpf bpf /sys/fs/bpf`,
      ),
    );
  },
);
