// `npm run test:image`: the agent image (deploy/Dockerfile, built by deploy/build-image.sh)
// run the way deploy/daemonset.yaml runs it, on each node of a lab built from examples/demo
// (nodes and pods as network namespaces): the privileged mount-bpffs init container, then
// the agent container in the node's network namespace (its "host network") with the
// manifest's host mounts, propagation, capabilities and no-new-privileges. The one
// difference: the agent follows the lab's state directory (--state, mounted read-only)
// instead of the API server and the ConfigMap. Checks that the running agent holds exactly
// the manifest's capabilities, that every pod pair connects without policies, and that with
// examples/demo/policies every cell is what the reference evaluator says (some denied).
// Prints the truth tables and the image size; exits 1 on any mismatch.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { waitForAgents } from '../../src/lab/barrier';
import { run } from '../../src/lab/exec';
import { labDown, labUp } from '../../src/lab/lifecycle';
import { formatMatrix, matrixPairs, parsePort, probePairs, type PairResult } from '../../src/lab/probe';
import { saveState, type LabState } from '../../src/lab/state';
import { concatYaml, copyStateDir, writeAtomic } from '../../src/lab/workdir';
import type { L4Protocol } from '../../src/model/rules';
import { podMatrix } from '../../src/reference/matrix';
import { loadStateDir } from '../../src/sources/directory';

const REPO = path.resolve(__dirname, '../../..');
const STATE_IN_CONTAINER = '/var/lib/netfence/state';
/** Linux capability numbers (include/uapi/linux/capability.h): index = bit. */
const CAPS = [
  'CHOWN',
  'DAC_OVERRIDE',
  'DAC_READ_SEARCH',
  'FOWNER',
  'FSETID',
  'KILL',
  'SETGID',
  'SETUID',
  'SETPCAP',
  'LINUX_IMMUTABLE',
  'NET_BIND_SERVICE',
  'NET_BROADCAST',
  'NET_ADMIN',
  'NET_RAW',
  'IPC_LOCK',
  'IPC_OWNER',
  'SYS_MODULE',
  'SYS_RAWIO',
  'SYS_CHROOT',
  'SYS_PTRACE',
  'SYS_PACCT',
  'SYS_ADMIN',
  'SYS_BOOT',
  'SYS_NICE',
  'SYS_RESOURCE',
  'SYS_TIME',
  'SYS_TTY_CONFIG',
  'MKNOD',
  'LEASE',
  'AUDIT_WRITE',
  'AUDIT_CONTROL',
  'SETFCAP',
  'MAC_OVERRIDE',
  'MAC_ADMIN',
  'SYSLOG',
  'WAKE_ALARM',
  'BLOCK_SUSPEND',
  'AUDIT_READ',
  'PERFMON',
  'BPF',
  'CHECKPOINT_RESTORE',
];

interface Mount {
  name: string;
  mountPath: string;
  mountPropagation?: 'None' | 'HostToContainer' | 'Bidirectional';
  readOnly?: boolean;
}
interface Container {
  name: string;
  image: string;
  command: string[];
  args?: string[];
  securityContext: {
    privileged?: boolean;
    allowPrivilegeEscalation?: boolean;
    capabilities?: { add?: string[]; drop?: string[] };
  };
  volumeMounts?: Mount[];
}
interface PodSpec {
  initContainers: Container[];
  containers: Container[];
  volumes: Array<{ name: string; hostPath?: { path: string } }>;
}

const podSpec = (
  parse(readFileSync(path.join(REPO, 'deploy/daemonset.yaml'), 'utf8')) as { spec: { template: { spec: PodSpec } } }
).spec.template.spec;
const agentSpec = podSpec.containers.find((c) => c.name === 'agent')!;
const mountSpec = podSpec.initContainers.find((c) => c.name === 'mount-bpffs')!;
const IMAGE = agentSpec.image;

/** podman with the flags this machine needs (deploy/podman.sh, shared with the build). */
const podman = (args: string[], timeoutMs = 60_000) =>
  run(
    ['bash', '-c', 'source "$0" && podman_ "$@"', path.join(REPO, 'deploy/podman.sh'), ...args],
    undefined,
    timeoutMs,
  );

/** podman flags for a container of the manifest: security context and host mounts. Host
 *  paths under `redirect` go to test directories instead (nothing outside the lab is touched). */
function containerFlags(c: Container, netns: string, redirect: Record<string, string>): string[] {
  const sc = c.securityContext;
  const flags = [
    '--pull=never',
    '--network',
    `ns:/run/netns/${netns}`,
    // The kubelet's default seccomp profile is Unconfined (no seccompProfile in the manifest).
    '--security-opt',
    'seccomp=unconfined',
  ];
  if (sc.privileged) flags.push('--privileged');
  if (sc.allowPrivilegeEscalation === false) flags.push('--security-opt', 'no-new-privileges');
  for (const cap of sc.capabilities?.drop ?? []) flags.push('--cap-drop', cap);
  for (const cap of sc.capabilities?.add ?? []) flags.push('--cap-add', cap);
  for (const m of c.volumeMounts ?? []) {
    const hostPath = podSpec.volumes.find((v) => v.name === m.name)?.hostPath?.path;
    if (!hostPath) continue; // the ConfigMap: the lab's state directory carries the settings
    const options = [m.readOnly ? 'ro' : 'rw'];
    if (m.mountPropagation === 'Bidirectional') options.push('rshared');
    if (m.mountPropagation === 'HostToContainer') options.push('rslave');
    flags.push('-v', `${redirect[hostPath] ?? hostPath}:${m.mountPath}:${options.join(',')}`);
  }
  return flags;
}

/** The agent's container arguments: the manifest's, the lab's state instead of --config. */
function agentArgs(bpffsRoot: string, metricsAddress: string): string[] {
  const args = [...(agentSpec.args ?? [])];
  const at = args.indexOf('--config');
  if (at >= 0) args.splice(at, 2);
  return [...args, '--state', STATE_IN_CONTAINER, '--bpffs-root', bpffsRoot, '--metrics-address', metricsAddress];
}

function capsOf(pid: number): { caps: string[]; noNewPrivs: string } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const eff = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)/m.exec(status)![1]}`);
  return {
    caps: CAPS.filter((_, bit) => (eff >> BigInt(bit)) & 1n).sort(),
    noNewPrivs: /^NoNewPrivs:\s*(\d)/m.exec(status)![1],
  };
}

/** Starts a node's init and agent containers; `containers` gets the agent's name before it
 *  is created, so a failed start is removed too. */
async function startNodeAgent(
  state: LabState,
  node: { name: string; netns: string },
  work: string,
  containers: string[],
): Promise<void> {
  const runDir = path.join(work, `run-${node.name}`);
  const cniConf = path.join(work, `cni-conf-${node.name}`);
  const cniBin = path.join(work, `cni-bin-${node.name}`);
  for (const d of [runDir, cniConf, cniBin]) mkdirSync(d, { recursive: true });
  const redirect = { '/run/netfence': runDir, '/etc/cni/net.d': cniConf, '/opt/cni/bin': cniBin };

  // The init container: its command, as the DaemonSet runs it before the agent.
  await podman([
    'run',
    '--rm',
    ...containerFlags(mountSpec, node.netns, redirect),
    '--entrypoint',
    mountSpec.command[0],
    IMAGE,
    ...mountSpec.command.slice(1),
  ]);

  const name = `${state.name}-agent-${node.name}`;
  containers.push(name);
  const bpffsRoot = path.join(state.bpffsRoot, node.name);
  mkdirSync(bpffsRoot, { recursive: true });
  const metricsAddress = '127.0.0.1:9402';
  await podman([
    'run',
    '-d',
    '--name',
    name,
    ...containerFlags(agentSpec, node.netns, redirect),
    '-v',
    `${state.agentStateDir}:${STATE_IN_CONTAINER}:ro`,
    '-e',
    `NODE_NAME=${node.name}`,
    '--entrypoint',
    agentSpec.command[0],
    IMAGE,
    ...agentSpec.command.slice(1),
    ...agentArgs(bpffsRoot, metricsAddress),
  ]);
  const pid = Number((await podman(['inspect', '--format', '{{.State.Pid}}', name])).stdout.trim());
  // The log is `podman logs`, written next to the work directory when the test fails.
  state.agents.push({
    node: node.name,
    netns: node.netns,
    pid,
    metricsAddress,
    log: path.join(os.tmpdir(), `${name}.log`),
  });
  saveState(state);
}

/** Probes every pod pair on every lab port and compares with the reference evaluator on the
 *  agents' state directory as it is now. Returns the mismatches. */
async function check(state: LabState, title: string): Promise<{ mismatches: string[]; denied: number }> {
  const ports = state.plan!.ports.map((p) => `${p.port}/${p.protocol}`);
  const results = await probePairs(state, matrixPairs(state.plan!, ports));
  console.log(`\n== ${title} ==\n${formatMatrix(results)}`);
  const snapshot = loadStateDir(state.agentStateDir);
  const expected = new Map<string, string>();
  for (const port of ports) {
    const { port: n, protocol } = parsePort(port);
    for (const family of [4, 6] as const) {
      for (const p of podMatrix(snapshot, { protocol: protocol as L4Protocol, port: n, family }))
        expected.set(`${port} ${family} ${p.from}>${p.to}`, p.verdict);
    }
  }
  const want = (r: PairResult) =>
    expected.get(`${r.port} ${r.family ?? 4} ${r.from}>${r.to}`) ?? expected.get(`${r.port} 6 ${r.from}>${r.to}`);
  const mismatches = results
    .filter((r) => r.verdict !== 'skip' && r.verdict !== want(r))
    .map(
      (r) =>
        `${title}: ${r.from} -> ${r.to} ${r.port}${r.family ? ` IPv${r.family}` : ''}: got ${r.verdict}, reference ${want(r)}${r.detail ? ` (${r.detail})` : ''}`,
    );
  return { mismatches, denied: results.filter((r) => r.verdict === 'deny').length };
}

async function main(): Promise<number> {
  const started = Date.now();
  const work = mkdtempSync(path.join(os.tmpdir(), 'nf-image-'));
  const stateDir = path.join(work, 'demo');
  cpSync(path.join(REPO, 'examples/demo'), stateDir, { recursive: true });
  const failures: string[] = [];
  const containers: string[] = [];
  let state: LabState | undefined;
  try {
    const size = Number((await podman(['image', 'inspect', '--format', '{{.Size}}', IMAGE])).stdout.trim());
    console.log(`image ${IMAGE}: ${(size / 1e6).toFixed(0)} MB`);
    state = await labUp(loadStateDir(stateDir), {
      stateDir,
      prefix: 'nfim-',
      agents: false,
      log: (l) => console.log(l),
      workingCopy: (dir) => copyStateDir(stateDir, dir, ['policies']),
    });
    for (const node of state.plan!.nodes) await startNodeAgent(state, node, work, containers);
    await waitForAgents(state, 60_000);
    console.log(`${containers.length} agent containers ready`);

    const wantCaps = [...(agentSpec.securityContext.capabilities?.add ?? [])].sort();
    for (const a of state.agents) {
      const { caps, noNewPrivs } = capsOf(a.pid);
      console.log(`agent ${a.node} (pid ${a.pid}): CapEff ${caps.join(',')}, NoNewPrivs ${noNewPrivs}`);
      if (caps.join(',') !== wantCaps.join(','))
        failures.push(`agent ${a.node}: capabilities ${caps.join(',')}, the manifest adds ${wantCaps.join(',')}`);
      if (noNewPrivs !== '1')
        failures.push(`agent ${a.node}: NoNewPrivs ${noNewPrivs} (allowPrivilegeEscalation: false)`);
    }

    const before = await check(state, `no policies (${state.agentStateDir})`);
    failures.push(...before.mismatches);
    writeAtomic(path.join(state.agentStateDir, 'policies.yaml'), concatYaml(path.join(stateDir, 'policies')));
    await waitForAgents(state, 60_000);
    const after = await check(state, 'with examples/demo/policies');
    failures.push(...after.mismatches);
    if (after.denied === 0) failures.push('with the policies nothing is denied: the policies were not enforced');
  } catch (err) {
    failures.push(`test:image: ${(err as Error).message}`);
  } finally {
    for (const name of containers) {
      if (failures.length > 0) {
        const logs = await podman(['logs', name]).catch((e: Error) => ({ stdout: '', stderr: e.message }));
        const file = path.join(os.tmpdir(), `${name}.log`);
        writeFileSync(file, logs.stdout + logs.stderr);
        console.log(`agent log: ${file}`);
      }
      await podman(['rm', '-f', '--ignore', '-t', '2', name]).catch((e: Error) =>
        failures.push(`remove ${name}: ${e.message}`),
      );
    }
    if (state) await labDown(state.name).catch((e: Error) => failures.push(`lab down: ${e.message}`));
    rmSync(work, { recursive: true, force: true });
  }
  for (const f of failures) console.log(`FAIL ${f}`);
  console.log(
    `test:image: ${failures.length === 0 ? 'ok' : `${failures.length} failures`} in ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
  return failures.length === 0 ? 0 : 1;
}

void main().then((code) => process.exit(code));
