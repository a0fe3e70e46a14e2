// Runs inside a pod namespace: reads "IP PORT TIMEOUT_MS" lines on stdin and answers
// each with "allow" (connected), "deny" (timed out or refused) or "error DETAIL".
// One long-lived process, so a probe costs a connect, not a process start.
import net from 'node:net';
import readline from 'node:readline';

function probe(ip: string, port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: ip, port });
    const done = (v: string): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done('deny'), timeoutMs);
    s.once('connect', () => done('allow'));
    s.once('error', (e: NodeJS.ErrnoException) =>
      done(e.code === 'ECONNREFUSED' ? 'deny' : `error ${e.code ?? e.message}`),
    );
  });
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const [ip, port, timeout] = line.trim().split(/\s+/);
  void probe(ip, Number(port), Number(timeout)).then((v) => process.stdout.write(`${v}\n`));
});
process.stdout.write('ready\n');
