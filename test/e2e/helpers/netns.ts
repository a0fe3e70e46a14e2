// Small network-namespace fixture for agent e2e tests: one node netns with pod netns
// attached by veths (Calico-style /32 routes + proxy ARP), lab servers in the pods, probes
// with the lab client, and the agent run inside the node netns. Everything is removed
// in t.teardown, also when the test fails.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';

const dist = path.resolve(__dirname, '../../..');
const labClient = path.join(dist, 'src/lab/client.js');
const labServer = path.join(dist, 'src/lab/server.js');
const agentMain = path.join(__dirname, 'agent-main.js');

export function sh(argv: string[]): string {
  return execFileSync(argv[0], argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
const inNs = (ns: string, argv: string[]): string[] => ['ip', 'netns', 'exec', ns, ...argv];

export interface PodSpec {
  name: string;
  ip: string;
  hostIf: string;
}

export class NodeFixture {
  readonly node: string;
  readonly pods = new Map<string, { netns: string } & PodSpec>();
  readonly bpffsRoot: string;
  readonly stateDir: string;
  private readonly procs: ChildProcess[] = [];

  constructor(
    private readonly t: ExecutionContext,
    readonly tag: string,
  ) {
    this.node = `nf-e2e-${tag}-${process.pid}`;
    this.bpffsRoot = `/sys/fs/bpf/nf-e2e-${tag}-${process.pid}`;
    this.stateDir = fs.mkdtempSync(path.join(os.tmpdir(), `nf-e2e-${tag}-`));
    t.teardown(() => this.destroy());
    sh(['ip', 'netns', 'add', this.node]);
    sh(inNs(this.node, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']));
    sh(['ip', '-n', this.node, 'link', 'set', 'lo', 'up']);
  }

  addPod(p: PodSpec): void {
    const netns = `${this.node}-${p.name}`;
    sh(['ip', 'netns', 'add', netns]);
    this.pods.set(p.name, { ...p, netns });
    sh(['ip', '-n', this.node, 'link', 'add', p.hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
    sh(['ip', '-n', netns, 'link', 'set', 'lo', 'up']);
    sh(['ip', '-n', netns, 'link', 'set', 'eth0', 'up']);
    sh(['ip', '-n', netns, 'addr', 'add', `${p.ip}/32`, 'dev', 'eth0']);
    sh(['ip', '-n', netns, 'route', 'add', '169.254.1.1', 'dev', 'eth0', 'scope', 'link']);
    sh(['ip', '-n', netns, 'route', 'add', 'default', 'via', '169.254.1.1', 'dev', 'eth0']);
    sh(['ip', '-n', this.node, 'link', 'set', p.hostIf, 'up']);
    sh(inNs(this.node, ['sysctl', '-q', '-w', `net.ipv4.conf.${p.hostIf}.proxy_arp=1`]));
    sh(['ip', '-n', this.node, 'route', 'add', `${p.ip}/32`, 'dev', p.hostIf]);
  }

  /** Lab server in a pod (TCP and UDP echo on the given ports); resolves when it listens. */
  async serve(pod: string, ports: string[]): Promise<void> {
    const proc = spawn('ip', inNs(this.pods.get(pod)!.netns, [process.execPath, labServer, pod, ...ports]), { stdio: ['ignore', 'pipe', 'inherit'] });
    this.procs.push(proc);
    await new Promise<void>((resolve, reject) => {
      proc.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      proc.once('exit', (c) => reject(new Error(`start server in ${pod}: exited ${c}`)));
    });
  }

  /** 'allow' | 'deny' per target from a pod (lab client connect mode). */
  probe(from: string, targets: { ip: string; port: number; protocol: 'TCP' | 'UDP' }[], timeoutMs = 700): string[] {
    const input = JSON.stringify({ timeoutMs, targets: targets.map((x, i) => ({ id: String(i), ...x })) });
    const out = execFileSync('ip', inNs(this.pods.get(from)!.netns, [process.execPath, labClient, 'connect']), { input, encoding: 'utf8' });
    return (JSON.parse(out) as { results: { id: string; verdict: string }[] }).results.sort((a, b) => Number(a.id) - Number(b.id)).map((r) => r.verdict);
  }

  writeState(name: string, yaml: string): void {
    fs.writeFileSync(path.join(this.stateDir, name), yaml);
  }
  removeState(name: string): void {
    fs.rmSync(path.join(this.stateDir, name), { force: true });
  }

  /** Starts `netfence agent` inside the node netns; resolves once /readyz reports `minGeneration`. */
  async startAgent(metricsPort: number): Promise<ChildProcess> {
    const log = fs.openSync(path.join(this.stateDir, '..', `${path.basename(this.stateDir)}-agent.log`), 'a');
    const proc = spawn(
      'ip',
      inNs(this.node, [process.execPath, agentMain, 'agent', '--state', this.stateDir, '--node', 'n1', '--bpffs-root', this.bpffsRoot, '--metrics-address', `127.0.0.1:${metricsPort}`, '--resync-seconds', '5']),
      { stdio: ['ignore', log, log] },
    );
    fs.closeSync(log);
    this.procs.push(proc);
    return proc;
  }

  agentLog(): string {
    const f = path.join(this.stateDir, '..', `${path.basename(this.stateDir)}-agent.log`);
    return fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '';
  }

  /** Polls /readyz inside the node netns until generation >= min (lab client readyz mode). */
  readyz(metricsPort: number, minGeneration: number, timeoutMs = 60_000): Record<string, unknown> {
    const out = execFileSync('ip', inNs(this.node, [process.execPath, labClient, 'readyz', `http://127.0.0.1:${metricsPort}/readyz`, String(minGeneration), String(timeoutMs)]), {
      encoding: 'utf8',
      timeout: timeoutMs + 5000,
    });
    return JSON.parse(out) as Record<string, unknown>;
  }

  private destroy(): void {
    for (const p of this.procs) if (p.exitCode === null && p.pid) p.kill('SIGKILL');
    for (const { netns } of this.pods.values()) sh(['ip', 'netns', 'del', netns]);
    try {
      sh(['ip', 'netns', 'del', this.node]);
    } catch {
      /* already gone */
    }
    fs.rmSync(this.bpffsRoot, { recursive: true, force: true });
    fs.rmSync(this.stateDir, { recursive: true, force: true });
  }
}
