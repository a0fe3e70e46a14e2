// Lab probe client, run inside a source netns (`ip netns exec NS node client.js MODE`):
//   connect  stdin {timeoutMs, targets:[{id, ip, port, protocol}]} -> stdout {results:[...]}
//            every connect runs concurrently; allow = a reply came back, deny = timeout.
//   hold IP PORT   keeps one TCP connection open; each stdin line sends a request and
//            prints "allow"/"deny"/"error <detail>" (established-connection checks).
//   udpflood IP PORT COUNT TIMEOUTMS   sends COUNT requests on fresh source ports, prints
//            {sent, received} (DNS-like loss through a ClusterIP).
//   readyz URL HASH TIMEOUTMS   polls an agent's /readyz until it answers 200 with
//            stateHash = HASH; prints the JSON (the generation barrier).
import { connect, type Socket } from 'node:net';
import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { createInterface } from 'node:readline';
import { get } from 'node:http';

export interface ConnectTarget {
  id: string;
  ip: string;
  port: number;
  protocol: 'TCP' | 'UDP';
}

export interface ConnectResult {
  id: string;
  verdict: 'allow' | 'deny' | 'error';
  detail?: string;
  reply?: string;
}

function probeTcp(t: ConnectTarget, timeoutMs: number): Promise<ConnectResult> {
  return new Promise((resolve) => {
    const sock = connect({ host: t.ip, port: t.port });
    const done = (r: Omit<ConnectResult, 'id'>): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ id: t.id, ...r });
    };
    const timer = setTimeout(() => done({ verdict: 'deny', detail: 'timeout' }), timeoutMs);
    sock.once('connect', () => sock.write('ping\n'));
    sock.once('data', (d) => done({ verdict: 'allow', reply: d.toString().trim() }));
    sock.once('error', (err: NodeJS.ErrnoException) => done({ verdict: 'error', detail: err.code ?? err.message }));
  });
}

function probeUdp(t: ConnectTarget, timeoutMs: number): Promise<ConnectResult> {
  return new Promise((resolve) => {
    const sock = createSocket(isIPv6(t.ip) ? 'udp6' : 'udp4');
    let resend: NodeJS.Timeout | undefined;
    const done = (r: Omit<ConnectResult, 'id'>): void => {
      clearTimeout(timer);
      clearInterval(resend);
      sock.close();
      resolve({ id: t.id, ...r });
    };
    const timer = setTimeout(() => done({ verdict: 'deny', detail: 'timeout' }), timeoutMs);
    sock.on('message', (d) => done({ verdict: 'allow', reply: d.toString().trim() }));
    sock.on('error', (err: NodeJS.ErrnoException) => done({ verdict: 'error', detail: err.code ?? err.message }));
    sock.connect(t.port, t.ip, () => {
      const send = (): void => sock.send('ping\n');
      send();
      // One datagram may meet an unresolved neighbour: resend a few times within the timeout.
      resend = setInterval(send, Math.max(50, Math.floor(timeoutMs / 4)));
    });
  });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

async function connectMode(): Promise<void> {
  const req = JSON.parse(await readStdin()) as { timeoutMs: number; targets: ConnectTarget[] };
  const results = await Promise.all(
    req.targets.map((t) => (t.protocol === 'TCP' ? probeTcp(t, req.timeoutMs) : probeUdp(t, req.timeoutMs))),
  );
  process.stdout.write(JSON.stringify({ results }));
}

async function holdMode(ip: string, port: number): Promise<void> {
  const sock: Socket = connect({ host: ip, port });
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  sock.on('error', () => undefined);
  process.stdout.write('connected\n');
  const lines = createInterface({ input: process.stdin });
  for await (const _line of lines) {
    const verdict = await new Promise<string>((resolve) => {
      const timer = setTimeout(() => {
        sock.off('data', onData);
        resolve('deny');
      }, 1000);
      const onData = (): void => {
        clearTimeout(timer);
        resolve('allow');
      };
      sock.once('data', onData);
      sock.write('ping\n', (err) => {
        if (err) {
          clearTimeout(timer);
          resolve(`error ${err.message}`);
        }
      });
    });
    process.stdout.write(`${verdict}\n`);
  }
  sock.destroy();
}

async function udpFlood(ip: string, port: number, count: number, timeoutMs: number): Promise<void> {
  const targets: ConnectTarget[] = Array.from({ length: count }, (_, i) => ({
    id: String(i),
    ip,
    port,
    protocol: 'UDP',
  }));
  let received = 0;
  // Batches keep the burst realistic (a resolver's parallel queries) without exhausting ports.
  for (let i = 0; i < targets.length; i += 50) {
    const batch = await Promise.all(targets.slice(i, i + 50).map((t) => probeUdpOnce(t, timeoutMs)));
    received += batch.filter(Boolean).length;
  }
  process.stdout.write(JSON.stringify({ sent: count, received }));
}

/** One datagram, no resend: loss must show. */
function probeUdpOnce(t: ConnectTarget, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createSocket(isIPv6(t.ip) ? 'udp6' : 'udp4');
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      sock.close();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.on('message', () => done(true));
    sock.on('error', () => done(false));
    sock.connect(t.port, t.ip, () => sock.send('query\n'));
  });
}

/** node:http rather than fetch: loading undici costs this short-lived process a second. */
function httpGet(url: string, timeoutMs: number): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { timeout: timeoutMs }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

async function readyzMode(url: string, hash: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  for (;;) {
    try {
      const { status, text } = await httpGet(url, 1000);
      last = `HTTP ${status} ${text}`;
      const body = JSON.parse(text) as { stateHash?: unknown };
      if (status === 200 && body.stateHash === hash) {
        process.stdout.write(text);
        return;
      }
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `wait for agent ${url}: state ${hash.slice(0, 12)} not applied in ${timeoutMs} ms (last: ${last.slice(0, 600)})`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function main(argv: string[]): Promise<void> {
  const [mode, ...args] = argv;
  switch (mode) {
    case 'connect':
      return connectMode();
    case 'hold':
      return holdMode(args[0], Number(args[1]));
    case 'udpflood':
      return udpFlood(args[0], Number(args[1]), Number(args[2]), Number(args[3]));
    case 'readyz':
      return readyzMode(args[0], args[1], Number(args[2]));
    default:
      throw new Error(`lab client: unknown mode "${mode}" (connect, hold, udpflood, readyz)`);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err: Error) => {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  });
}
