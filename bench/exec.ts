// Process helpers for the benchmark tooling beside run() (src/lab/exec.ts): clean-ups on
// interrupt, background servers stopped by their own pid, children spoken to in lines.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { SYSTEM_ENV } from '../src/lab/exec';

const interruptCleanups: (() => void)[] = [];
let interruptInstalled = false;

/** Synchronous clean-up to run if the benchmark is interrupted (Ctrl-C, timeout). */
export function onInterrupt(cleanup: () => void): () => void {
  interruptCleanups.push(cleanup);
  if (!interruptInstalled) {
    interruptInstalled = true;
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      process.once(sig, () => {
        for (const f of interruptCleanups.splice(0).reverse()) {
          try {
            f();
          } catch {
            // keep cleaning up the rest
          }
        }
        process.exit(130);
      });
    }
  }
  return () => {
    const i = interruptCleanups.indexOf(cleanup);
    if (i >= 0) interruptCleanups.splice(i, 1);
  };
}

/** Synchronous run for interrupt clean-ups; errors ignored. */
export function runSyncQuiet(cmd: string, args: readonly string[]): void {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: 10000, env: SYSTEM_ENV });
  } catch {
    // best effort
  }
}

/** A long-running process; `ready` resolves when its stdout contains `readyText`. */
export class Background {
  private readonly child: ChildProcess;
  private output = '';
  readonly ready: Promise<void>;

  constructor(
    readonly label: string,
    cmd: string,
    args: readonly string[],
    readyText: string,
    readyTimeoutMs = 10000,
  ) {
    this.child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: SYSTEM_ENV });
    this.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`start ${label}: no "${readyText}" within ${readyTimeoutMs} ms`)),
        readyTimeoutMs,
      );
      this.child.once('exit', () => clearTimeout(timer));
      const onData = (d: Buffer): void => {
        this.output += d.toString();
        if (this.output.includes(readyText)) {
          clearTimeout(timer);
          resolve();
        }
      };
      this.child.stdout?.on('data', onData);
      this.child.stderr?.on('data', onData);
      this.child.on('error', (e) => reject(new Error(`start ${label}: ${e.message}`)));
      this.child.on('exit', (code) =>
        reject(new Error(`start ${label}: exited ${code}: ${this.output.trim().slice(0, 300)}`)),
      );
    });
    // A server that dies after start is reported by the next measurement failing.
    this.ready.catch(() => undefined);
  }

  /** Signal this process (and only it) without waiting. */
  kill(): void {
    this.child.kill('SIGKILL');
  }

  /** Stop this process (and only it) and wait for it to exit. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(t);
  }
}

/** A child process spoken to in lines: each `ask` writes one line to its stdin and
 *  resolves with the next line it prints (its stderr goes into the errors). */
export class LineChild {
  private readonly child: ChildProcess;
  private buffered = '';
  private stderr = '';
  private waiting: { resolve: (line: string) => void; reject: (e: Error) => void } | undefined;
  private exited: Promise<void>;

  constructor(
    readonly label: string,
    cmd: string,
    args: readonly string[],
  ) {
    this.child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: SYSTEM_ENV });
    this.child.stdin!.on('error', () => undefined);
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.child.stdout!.on('data', (d: Buffer) => {
      this.buffered += d.toString();
      this.deliver();
    });
    this.exited = new Promise((resolve) =>
      this.child.on('close', (code, signal) => {
        this.waiting?.reject(new Error(`${label}: exited ${code ?? signal}: ${this.stderr.trim().slice(0, 500)}`));
        this.waiting = undefined;
        resolve();
      }),
    );
  }

  private deliver(): void {
    const nl = this.buffered.indexOf('\n');
    if (nl < 0 || !this.waiting) return;
    const line = this.buffered.slice(0, nl);
    this.buffered = this.buffered.slice(nl + 1);
    this.waiting.resolve(line);
    this.waiting = undefined;
  }

  ask(line: string, timeoutMs = 60000): Promise<string> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) {
      return Promise.reject(new Error(`${this.label}: not running: ${this.stderr.trim().slice(0, 500)}`));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.label}: no answer to "${line}" within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const done =
        <T>(f: (v: T) => void) =>
        (v: T): void => {
          clearTimeout(timer);
          f(v);
        };
      this.waiting = { resolve: done(resolve), reject: done(reject) };
      this.child.stdin!.write(`${line}\n`);
      this.deliver();
    });
  }

  /** End its input (it exits at EOF) and wait; killed after 5 s. */
  async close(): Promise<void> {
    this.child.stdin!.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(t);
  }
}
