// Running tooling (ip, iptables, sysctl, node in a netns) for the lab, the e2e tests and the
// benchmarks: argument arrays only, never a shell. Errors name the command and carry its stderr.
import { spawn } from 'node:child_process';

/** System tools come from the system's directories only: under `npm run`, PATH starts with
 *  node_modules/.bin, where a package's `nft` (a file tracer) hides nftables' `nft`. */
export const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const SYSTEM_ENV: NodeJS.ProcessEnv = { ...process.env, PATH: SYSTEM_PATH };

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (no shell). Rejects naming the command, how it ended and
 *  its stderr on a non-zero exit, a signal or the timeout (it is then killed). */
export function run(argv: readonly string[], input?: string, timeoutMs = 30_000): Promise<RunResult> {
  const what = `run ${argv.join(' ').slice(0, 300)}`;
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), {
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: SYSTEM_ENV,
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`${what}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve({ stdout, stderr });
      const end = timedOut ? `no exit within ${timeoutMs} ms` : `exit ${code ?? signal}`;
      reject(new Error(`${what}: ${end}${stderr.trim() ? `: ${stderr.trim().slice(0, 1000)}` : ''}`));
    });
    if (child.stdin) {
      // A tool that exits before reading all its input fails on its exit code, not on EPIPE.
      child.stdin.on('error', () => undefined);
      child.stdin.end(input);
    }
  });
}

/** Runs a command inside a named network namespace. */
export function nsRun(netns: string, argv: readonly string[], input?: string, timeoutMs?: number): Promise<RunResult> {
  return run(['ip', 'netns', 'exec', netns, ...argv], input, timeoutMs);
}

/** Runs a command, treating a failure as "absent" (for idempotent teardown). */
export async function tryRun(argv: readonly string[]): Promise<boolean> {
  try {
    await run(argv);
    return true;
  } catch {
    return false;
  }
}

/** Starts a long-lived process that outlives this one, output appended to `logFile`. */
export function spawnDetached(argv: string[], logFd: number): number {
  const child = spawn(argv[0], argv.slice(1), { detached: true, stdio: ['ignore', logFd, logFd], env: SYSTEM_ENV });
  if (child.pid === undefined) throw new Error(`spawn ${argv.join(' ')}: no pid`);
  child.unref();
  return child.pid;
}

/** Absolute path of a compiled lab script (dist/src/lab/<name>.js). */
export function labScript(name: string): string {
  return require.resolve(`./${name}`);
}
