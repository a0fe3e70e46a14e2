// A lab (src/lab: fabric, node and pod namespaces, servers, kube-proxy-style DNAT) with one
// `netfence agent` per node that the test starts, kills and restarts itself. The agents read
// the test's state directory; writes go through writeAtomic and the /readyz stateHash
// barrier (src/lab/barrier) says when a change is enforced. One lab per test file
// (test.before), removed by down() in test.after.always, also when a test fails.
import fs from 'node:fs';
import path from 'node:path';
import { run } from '../../../src/lab/exec';
import { readyz, waitForAgents, type AgentStatus } from '../../../src/lab/barrier';
import { labDown, labNameFor, labUp } from '../../../src/lab/lifecycle';
import { probePairs, type PairResult, type ProbePair } from '../../../src/lab/probe';
import { startAgent } from '../../../src/lab/processes';
import type { LabState } from '../../../src/lab/state';
import { writeAtomic } from '../../../src/lab/workdir';
import { loadStateDirAsync } from '../../../src/sources/directory';

const METRICS_ADDRESS = '127.0.0.1:9402';

// ---- manifests the lab tests share ---------------------------------------------------

export const DEMO_NAMESPACE = 'apiVersion: v1\nkind: Namespace\nmetadata: { name: demo }\n';
export const NODE_N1 =
  'apiVersion: v1\nkind: Node\nmetadata: { name: n1 }\nstatus: { addresses: [{ type: InternalIP, address: 192.168.50.11 }] }\n';

/** A pod of namespace demo labelled app=<name> serving TCP 80 (and UDP 53 with `udp53`: the lab starts a server per container port).
 *  `ip`: one address or several (dual stack); without, the source does not know its address yet (as the API at CNI ADD). */
export function demoPod(
  name: string,
  ip: string | string[] | undefined,
  opts: { udp53?: boolean; node?: string } = {},
): string {
  const ips = ip === undefined ? [] : [ip].flat();
  const ports = opts.udp53
    ? '[{ containerPort: 80 }, { containerPort: 53, protocol: UDP }]'
    : '[{ containerPort: 80 }]';
  return `
apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: demo, labels: { app: ${name} } }
spec: { nodeName: ${opts.node ?? 'n1'}, containers: [{ name: c, image: x, ports: ${ports} }] }
${ips.length > 0 ? `status: { podIPs: [${ips.map((a) => `{ ip: ${a} }`).join(', ')}] }` : ''}
`;
}

/** Namespace demo with pods a, b and c (10.244.1.2, .3, .4) on node n1, and the node. */
export function demoPodsAbc(opts: { udp53?: boolean } = {}): string {
  return [
    DEMO_NAMESPACE,
    demoPod('a', '10.244.1.2', opts),
    demoPod('b', '10.244.1.3', opts),
    demoPod('c', '10.244.1.4', opts),
    NODE_N1,
  ].join('---\n');
}

/** A NetworkPolicy isolating pods app=<app> of namespace demo (no rule: deny all). */
export const isolate = (app: string, types = 'Ingress'): string => `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: isolate-${app}, namespace: demo }
spec: { podSelector: { matchLabels: { app: ${app} } }, policyTypes: [${types}] }
`;

/** Pods app=<to> of namespace demo accept TCP 80 from app=<from> only. */
export const allowFrom = (to: string, from: string): string => `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: ${to}-from-${from}, namespace: demo }
spec:
  podSelector: { matchLabels: { app: ${to} } }
  policyTypes: [Ingress]
  ingress: [{ from: [{ podSelector: { matchLabels: { app: ${from} } } }], ports: [{ port: 80 }] }]
`;

/** b accepts TCP 80 from a only. */
export const ALLOW_A_TO_B = allowFrom('b', 'a');

/** The lab tests' NetfenceConfig (uplink eth0, services 10.96.0.0/16); `extra` is appended YAML. */
export function labConfig(extra = ''): string {
  return `apiVersion: netfence.io/v1alpha1\nkind: NetfenceConfig\nmetadata: { name: netfence }\nhostInterfaces: [eth0]\nserviceCIDRs: [10.96.0.0/16]\n${extra}`;
}

function alive(pid: number): boolean {
  try {
    // A zombie (killed, not reaped yet) is dead for our purpose.
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

export class AgentLab {
  private constructor(
    readonly stateDir: string,
    readonly state: LabState,
  ) {}

  /** Builds the lab of `files` (name -> YAML) under a fresh state directory; no agents yet. */
  static async up(tag: string, files: Record<string, string>): Promise<AgentLab> {
    const stateDir = fs.mkdtempSync(`/tmp/nf-e2e-${tag}-`);
    try {
      for (const [name, yaml] of Object.entries(files)) fs.writeFileSync(path.join(stateDir, name), yaml);
      const snapshot = await loadStateDirAsync(stateDir);
      if (snapshot.errors.length > 0) throw new Error(`load ${stateDir}: ${JSON.stringify(snapshot.errors)}`);
      return new AgentLab(
        stateDir,
        await labUp(snapshot, { stateDir, prefix: `nfe${tag.slice(0, 3)}-`, agents: false }),
      );
    } catch (e) {
      await labDown(labNameFor(stateDir, `nfe${tag.slice(0, 3)}-`)).catch(() => undefined);
      fs.rmSync(stateDir, { recursive: true, force: true });
      throw e;
    }
  }

  async down(): Promise<void> {
    await labDown(this.state.name);
    fs.rmSync(this.stateDir, { recursive: true, force: true });
  }

  write(name: string, yaml: string): void {
    writeAtomic(path.join(this.stateDir, name), yaml);
  }
  remove(name: string): void {
    fs.rmSync(path.join(this.stateDir, name), { force: true });
  }

  node(name = 'n1'): { netns: string; bpffsRoot: string } {
    const n = this.state.plan!.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`lab node ${name}: not in the plan`);
    return { netns: n.netns, bpffsRoot: path.join(this.state.bpffsRoot, name) };
  }
  podNetns(key: string): string {
    return this.state.plan!.pods.find((p) => p.key === key)!.netns;
  }
  hostIf(key: string): string {
    return this.state.plan!.pods.find((p) => p.key === key)!.hostIf!;
  }
  podIp(key: string): string {
    return this.state.plan!.pods.find((p) => p.key === key)!.ips.find((ip) => !ip.includes(':'))!;
  }

  /** Starts the agent of a node; resolves with its pid once it enforces the current state. */
  async startAgent(nodeName = 'n1'): Promise<{ pid: number; ready: AgentStatus; ms: number }> {
    const started = Date.now();
    const pid = this.spawnAgent(nodeName);
    const ready = await this.ready();
    return { pid, ready: ready.find((s) => s.node === nodeName)!, ms: Date.now() - started };
  }

  /** Starts the agent of a node without waiting; `source` replaces `--state <stateDir>`. */
  spawnAgent(nodeName = 'n1', source?: string[]): number {
    const { netns, bpffsRoot } = this.node(nodeName);
    fs.mkdirSync(bpffsRoot, { recursive: true });
    const extraArgs = ['--socket', this.cniSocket(nodeName)];
    const { pid, log } = startAgent(
      { node: nodeName, netns, stateDir: this.stateDir, source, bpffsRoot, metricsAddress: METRICS_ADDRESS, extraArgs },
      this.state.workDir,
    );
    this.state.agents = this.state.agents.filter((a) => a.node !== nodeName);
    this.state.agents.push({ node: nodeName, netns, pid, metricsAddress: METRICS_ADDRESS, log });
    this.state.pids.push(pid);
    return pid;
  }

  /** The agent's CNI request socket (unix sockets are not per netns: the test asks directly). */
  cniSocket(nodeName = 'n1'): string {
    return path.join(this.state.workDir, `cni-${nodeName}.sock`);
  }

  /** The generation barrier: every agent enforces the state directory as it is now. */
  async ready(timeoutMs = 30_000): Promise<AgentStatus[]> {
    try {
      return await waitForAgents(this.state, timeoutMs);
    } catch (e) {
      throw new Error(`${(e as Error).message}\nagent log:\n${this.agentLog().slice(-3000)}`);
    }
  }

  /** Waits until a node's agent is ready and enforces the state its source names `stateHash`. */
  async readyFor(stateHash: string, nodeName = 'n1', timeoutMs = 30_000): Promise<AgentStatus> {
    const agent = this.state.agents.find((a) => a.node === nodeName);
    if (!agent) throw new Error(`wait for agent ${nodeName}: not started`);
    try {
      return await readyz(agent, stateHash, timeoutMs);
    } catch (e) {
      throw new Error(`${(e as Error).message}\nagent log:\n${this.agentLog(nodeName).slice(-3000)}`);
    }
  }

  async kill(signal: NodeJS.Signals, nodeName = 'n1'): Promise<void> {
    const agent = this.state.agents.find((a) => a.node === nodeName);
    if (!agent) return;
    process.kill(agent.pid, signal);
    const deadline = Date.now() + 10_000;
    while (alive(agent.pid)) {
      if (Date.now() > deadline)
        throw new Error(`stop agent ${nodeName} (pid ${agent.pid}): still running 10 s after ${signal}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    this.state.agents = this.state.agents.filter((a) => a !== agent);
  }

  agentLog(nodeName = 'n1'): string {
    const file = path.join(this.state.workDir, `agent-${nodeName}.log`);
    return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  }

  /** Parsed JSON lines of the agent log (pino). */
  agentRecords(nodeName = 'n1'): Record<string, unknown>[] {
    return this.agentLog(nodeName)
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  async probe(pairs: ProbePair[], timeoutMs = 700): Promise<string[]> {
    return (await this.probeFull(pairs, timeoutMs)).map((r) => r.verdict);
  }
  probeFull(pairs: ProbePair[], timeoutMs = 700): Promise<PairResult[]> {
    return probePairs(this.state, pairs, { timeoutMs });
  }

  /** A command inside a lab netns (argument array, no shell). */
  async exec(netns: string, argv: string[]): Promise<string> {
    return (await run(['ip', 'netns', 'exec', netns, ...argv])).stdout;
  }

  /** GET on the agent's health/metrics listener, from inside its node netns. */
  async http(urlPath: string, nodeName = 'n1'): Promise<string> {
    const script = `require('http').get('http://${METRICS_ADDRESS}${urlPath}',r=>{let b='';r.on('data',d=>b+=d);r.on('end',()=>process.stdout.write(b))}).on('error',e=>{console.error(e.message);process.exit(1)})`;
    return this.exec(this.node(nodeName).netns, [process.execPath, '-e', script]);
  }

  /** `netfence <args>` inside a node netns (inspect, flows). */
  async cli(args: string[], nodeName = 'n1'): Promise<string> {
    const main = path.resolve(__dirname, '../../../src/cli/main.js');
    return (await run(['nsenter', `--net=/run/netns/${this.node(nodeName).netns}`, process.execPath, main, ...args]))
      .stdout;
  }
}
