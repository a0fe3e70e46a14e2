// A long-lived TCP connection held by a client process inside a lab netns: opened before a
// policy change, asked after it whether it still carries traffic (established flows).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';
import { labScript } from '../../src/lab/exec';

export class HeldConnection {
  private readonly lines: AsyncIterator<string>;

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    rl: Interface,
  ) {
    this.lines = rl[Symbol.asyncIterator]();
  }

  static async open(netns: string, ip: string, port: number): Promise<HeldConnection> {
    const child = spawn('ip', [
      'netns',
      'exec',
      netns,
      process.execPath,
      labScript('client'),
      'hold',
      ip,
      String(port),
    ]);
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const held = new HeldConnection(child, createInterface({ input: child.stdout }));
    const first = await held.next();
    if (first !== 'connected') {
      child.kill();
      throw new Error(`hold connection ${netns} -> ${ip}:${port}: ${first ?? 'exited'} ${stderr.trim()}`);
    }
    return held;
  }

  private async next(): Promise<string | undefined> {
    const r = await this.lines.next();
    return r.done ? undefined : r.value;
  }

  /** "allow" when a request still gets an answer within a second, else "deny"/"error ...". */
  async check(): Promise<string> {
    this.child.stdin.write('ping\n');
    return (await this.next()) ?? 'error: holder exited';
  }

  close(): void {
    this.child.stdin.end();
    this.child.kill();
  }
}
