// Long-lived lab processes (workload servers, agents) started inside lab netns.
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { labScript, run, spawnDetached } from './exec';
import type { ServerPlan } from './plan';

function sanitize(label: string): string {
  return label.replace(/[^A-Za-z0-9_.-]/g, '_');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits for `marker` in a process's log; fails fast when the process exits first. */
export async function waitForLog(
  pid: number,
  log: string,
  marker: string,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
    if (text.includes(marker)) return;
    if (!alive(pid)) throw new Error(`start ${what}: exited: ${text.trim().slice(-500) || 'no output'}`);
    if (Date.now() > deadline)
      throw new Error(`start ${what}: not ready in ${timeoutMs} ms: ${text.trim().slice(-500)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function spawnLogged(argv: string[], log: string): number {
  const fd = openSync(log, 'a');
  try {
    return spawnDetached(argv, fd);
  } finally {
    closeSync(fd);
  }
}

/** Starts a workload server and resolves with its pid once it listens on every port. */
export async function startServer(server: ServerPlan, workDir: string, onPid: (pid: number) => void): Promise<number> {
  const log = join(workDir, `server-${sanitize(server.label)}.log`);
  const ports = server.ports.map((p) => `${p.port}/${p.protocol}`);
  const pid = spawnLogged(
    ['ip', 'netns', 'exec', server.netns, process.execPath, labScript('server'), server.label, ...ports],
    log,
  );
  onPid(pid);
  await waitForLog(pid, log, `ready ${server.label}`, `lab server ${server.label}`);
  return pid;
}

/** The CLI entry point, when the CLI has been built. */
export function cliMain(): string | undefined {
  const main = join(__dirname, '..', 'cli', 'main.js');
  return existsSync(main) ? main : undefined;
}

/** True when the built CLI knows the `agent` command. */
export async function agentCommandAvailable(): Promise<boolean> {
  const main = cliMain();
  if (!main) return false;
  try {
    const { stdout } = await run([process.execPath, main, 'agent', '--help']);
    return stdout.includes('--bpffs-root');
  } catch {
    return false;
  }
}

export interface AgentSpec {
  node: string;
  netns: string;
  stateDir: string;
  /** Flags naming the agent's state source (default: --state stateDir). */
  source?: string[];
  bpffsRoot: string;
  metricsAddress: string;
  /** More `netfence agent` flags (e.g. --socket). */
  extraArgs?: string[];
}

export function startAgent(spec: AgentSpec, workDir: string): { pid: number; log: string } {
  const log = join(workDir, `agent-${sanitize(spec.node)}.log`);
  // nsenter, not `ip netns exec`: the latter remounts /sys, which hides the bpffs at /sys/fs/bpf.
  const argv = [
    'nsenter',
    `--net=/run/netns/${spec.netns}`,
    process.execPath,
    cliMain()!,
    'agent',
    ...(spec.source ?? ['--state', spec.stateDir]),
    '--node',
    spec.node,
    '--bpffs-root',
    spec.bpffsRoot,
    '--metrics-address',
    spec.metricsAddress,
    ...(spec.extraArgs ?? []),
  ];
  return { pid: spawnLogged(argv, log), log };
}

/** Stops every process inside a netns: TERM, then KILL after a grace period. */
export async function killNetnsProcesses(netns: string): Promise<void> {
  let pids: number[];
  try {
    const { stdout } = await run(['ip', 'netns', 'pids', netns]);
    pids = stdout.split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return; // the netns is already gone
  }
  for (const pid of pids) signal(pid, 'SIGTERM');
  const deadline = Date.now() + 3000;
  while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  for (const pid of pids.filter(alive)) signal(pid, 'SIGKILL');
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}
