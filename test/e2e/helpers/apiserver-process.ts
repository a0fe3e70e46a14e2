// Drives test/helpers/fake-apiserver-main in a child process started inside a lab
// netns (where the agent under test can reach its 127.0.0.1 listener): one request line,
// one reply line, in order.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import type { Command } from '../../helpers/fake-apiserver-main';
import type { Obj } from '../../helpers/fake-apiserver';

type Reply = { ok: boolean; error?: string; [k: string]: unknown };

export class ApiServerProcess {
  private readonly waiting: ((r: Reply) => void)[] = [];
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    lines: Interface,
    readonly url: string,
  ) {
    lines.on('line', (l) => this.waiting.shift()?.(JSON.parse(l) as Reply));
  }

  /** Starts the server inside `netns`; resolves once it listens. */
  static async start(netns: string): Promise<ApiServerProcess> {
    const main = path.resolve(__dirname, '../../helpers/fake-apiserver-main.js');
    const child = spawn('nsenter', [`--net=/run/netns/${netns}`, process.execPath, main, '127.0.0.1'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const lines = createInterface({ input: child.stdout });
    const first = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`start fake apiserver in ${netns}: no answer in 10 s: ${stderr}`)),
        10_000,
      );
      lines.once('line', (l) => {
        clearTimeout(timer);
        resolve(l);
      });
      child.once('exit', (code) => reject(new Error(`start fake apiserver in ${netns}: exited ${code}: ${stderr}`)));
    });
    return new ApiServerProcess(child, lines, (JSON.parse(first) as { url: string }).url);
  }

  private request(c: Command): Promise<Reply> {
    const next = this.chain.then(
      () =>
        new Promise<Reply>((resolve, reject) => {
          this.waiting.push((r) => (r.ok ? resolve(r) : reject(new Error(`fake apiserver ${c.op}: ${r.error}`))));
          this.child.stdin.write(JSON.stringify(c) + '\n');
        }),
    );
    this.chain = next.catch(() => undefined);
    return next;
  }

  async put(path: string, obj: Obj, quiet = false): Promise<void> {
    await this.request({ op: 'put', path, obj, quiet });
  }
  async remove(path: string, name: string, namespace?: string, quiet = false): Promise<void> {
    await this.request({ op: 'remove', path, name, namespace, quiet });
  }
  /** Forget history: watches from an older resourceVersion get 410 Gone. */
  async compact(): Promise<void> {
    await this.request({ op: 'compact' });
  }
  /** End open watches with a 410 Gone ERROR event. */
  async expire(path?: string): Promise<void> {
    await this.request({ op: 'expire', path });
  }
  async hold(path: string): Promise<void> {
    await this.request({ op: 'hold', path });
  }
  async release(path: string): Promise<void> {
    await this.request({ op: 'release', path });
  }
  async counts(path: string): Promise<{ lists: number; watches: number }> {
    const r = await this.request({ op: 'counts', path });
    return { lists: r.lists as number, watches: r.watches as number };
  }
  /** The version the Kubernetes source reports for the server's current objects. */
  async version(): Promise<string> {
    return (await this.request({ op: 'version' })).version as string;
  }

  /** A kubeconfig that points at this server. */
  kubeconfig(): string {
    return [
      'apiVersion: v1',
      'kind: Config',
      `clusters: [{ name: fake, cluster: { server: "${this.url}", insecure-skip-tls-verify: true } }]`,
      'users: [{ name: u, user: { token: t0k3n } }]',
      'contexts: [{ name: c, context: { cluster: fake, user: u } }]',
      'current-context: c',
      '',
    ].join('\n');
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }
}
