// Hand-built Ethernet frames between lab pods (test/e2e/fixtures/rawframe.c): VLAN and
// QinQ tagged traffic that no netdev here can produce (no 8021q module). One receiver per
// destination interface listens for the frames' markers while the senders run; closing its
// stdin after a settle time ends it, so a batch with drops costs one settle time in all.
import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { run } from '../../../src/lab/exec';

const FIXTURES = path.resolve(__dirname, '../../../../test/e2e/fixtures');

/** Builds (if needed) and returns the rawframe binary. */
export function rawframeBinary(): string {
  execFileSync('make', ['-s', '-C', FIXTURES], { stdio: 'inherit' });
  return path.join(FIXTURES, '.output/rawframe');
}

export interface Port {
  netns: string;
  ifname: string;
}

export interface FrameSpec {
  from: Port;
  to: Port & { mac: string };
  /** VLAN IDs, outermost first: one = 802.1Q, two = 802.1ad outer + 802.1Q inner. */
  tags: number[];
  src: string;
  dst: string;
  proto: 'tcp' | 'udp';
  sport: number;
  dport: number;
}

export interface Receipt {
  /** Tags as the receiver saw them, outermost first (tpid 0x8100 or 0x88a8). */
  vlans: { tpid: number; vid: number }[];
  ethertype: number;
}

let seq = 0;
const nextMarker = (): string => `nfv${process.pid}x${++seq}`;
const portKey = (p: Port): string => `${p.netns}/${p.ifname}`;

interface Listener {
  /** Resolves once the receive socket is bound. */
  ready: Promise<void>;
  /** Ends the receiver (closes its stdin). */
  stop: () => void;
  /** Receipts by marker, once the receiver exited. */
  result: Promise<Map<string, Receipt>>;
}

function listen(bin: string, at: Port, markers: string[]): Listener {
  const child = spawn('ip', ['netns', 'exec', at.netns, bin, 'recv', '-i', at.ifname, '-w', '30000', ...markers], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const got = new Map<string, Receipt>();
  let onReady!: () => void;
  const ready = new Promise<void>((r) => (onReady = r));
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (line === 'ready') return onReady();
    const r = JSON.parse(line) as Receipt & { marker: string };
    got.set(r.marker, { vlans: r.vlans, ethertype: r.ethertype });
  });
  const result = new Promise<Map<string, Receipt>>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(got) : reject(new Error(`receive frames on ${portKey(at)}: exit ${code}: ${stderr.trim()}`)),
    );
  });
  // An early exit (bad interface) must fail `ready` too, not leave it pending.
  return { ready: Promise.race([ready, result.then(() => undefined)]), stop: () => child.stdin.end(), result };
}

/** Sends every frame once (in order) and says which arrived, with the tags they carried. */
export async function exchange(bin: string, frames: FrameSpec[], settleMs = 300): Promise<(Receipt | undefined)[]> {
  const markers = frames.map(nextMarker);
  const byDest = new Map<string, { at: Port; markers: string[] }>();
  frames.forEach((f, i) => {
    const e = byDest.get(portKey(f.to)) ?? { at: f.to, markers: [] };
    e.markers.push(markers[i]);
    byDest.set(portKey(f.to), e);
  });
  const listeners = [...byDest.values()].map((d) => listen(bin, d.at, d.markers));
  try {
    await Promise.all(listeners.map((l) => l.ready));
    for (const [i, f] of frames.entries()) {
      const tags = f.tags.flatMap((t) => ['-v', String(t)]);
      const argv = [
        bin,
        'send',
        '-i',
        f.from.ifname,
        '-d',
        f.to.mac,
        ...tags,
        '-s',
        f.src,
        '-t',
        f.dst,
        '-p',
        f.proto,
        '-S',
        String(f.sport),
        '-D',
        String(f.dport),
        '-m',
        markers[i],
      ];
      await run(['ip', 'netns', 'exec', f.from.netns, ...argv]);
    }
    await new Promise((r) => setTimeout(r, settleMs));
  } finally {
    for (const l of listeners) l.stop();
  }
  const got = new Map((await Promise.all(listeners.map((l) => l.result))).flatMap((m) => [...m]));
  return markers.map((m) => got.get(m));
}
