// Running lab tooling (ip, iptables, sysctl, node in a netns): argument arrays only, never
// a shell. Errors name the command and carry its stderr.
import { execFile, spawn } from 'node:child_process';

/** System tools come from the system's directories only: under `npm run`, PATH starts with
 *  node_modules/.bin, where a package's `nft` (a file tracer) hides nftables' `nft`. */
export const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const SYSTEM_ENV: NodeJS.ProcessEnv = { ...process.env, PATH: SYSTEM_PATH };

export interface RunResult {
  stdout: string;
  stderr: string;
}

export function run(argv: string[], input?: string, timeoutMs = 30_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(argv[0], argv.slice(1), { timeout: timeoutMs, maxBuffer: 64 << 20, env: SYSTEM_ENV }, (err, stdout, stderr) => {
      if (err) {
        const detail = stderr.trim() || err.message;
        reject(new Error(`run ${argv.join(' ')}: ${detail}`));
      } else resolve({ stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Runs a command, treating a failure as "absent" (for idempotent teardown). */
export async function tryRun(argv: string[]): Promise<boolean> {
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
