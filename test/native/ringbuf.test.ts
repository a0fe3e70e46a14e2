// Ring buffer consumer: samples emitted by a program (run through progTestRun) arrive on
// the event loop, later than the run itself; close() stops delivery and lets the process exit.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { addonPath, native } from '../../src/datapath/native';
import { fixtureObject, throwsNative, udpPacket } from './helpers';

const obj = fixtureObject();

function load(t: { teardown(fn: () => void): void }): { prog: number; events: number } {
  const h = native.openObject(obj, {});
  t.teardown(() => h.close());
  return {
    prog: h.programs().find((p) => p.name === 'nt_classify')!.fd,
    events: h.maps().find((m) => m.name === 'nt_events')!.fd,
  };
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await sleep(5);
}

test("samples arrive on the event loop with the program's data", async (t) => {
  const { prog, events } = load(t);
  const samples: Buffer[] = [];
  const rb = native.ringBufferOpen(events, (s) => samples.push(s));
  t.teardown(() => rb.close());

  let ticks = 0;
  const timer = setInterval(() => (ticks += 1), 1);
  t.teardown(() => clearInterval(timer));
  native.progTestRun(prog, { data: udpPacket('10.0.0.2', '10.0.0.1', 53) });
  native.progTestRun(prog, { data: udpPacket('10.0.0.2', '10.0.0.9', 9) });
  t.is(samples.length, 0, 'nothing is delivered synchronously');
  await until(() => samples.length === 2);
  t.is(samples.length, 2);
  const [a, b] = samples;
  t.is(a.length, 16);
  t.deepEqual([a.readUInt32LE(0), b.readUInt32LE(0)], [0, 2], 'verdicts');
  t.is(a.readUInt32LE(4), udpPacket('10.0.0.2', '10.0.0.1', 53).length);
  t.deepEqual([...b.subarray(8, 12)], [10, 0, 0, 9], 'daddr');

  await sleep(20);
  t.true(ticks > 0, 'timers ran while the consumer was open');
});

test('close() inside the callback stops delivery; close() twice is fine', async (t) => {
  const { prog, events } = load(t);
  let seen = 0;
  const rb = native.ringBufferOpen(events, () => {
    seen += 1;
    rb.close();
  });
  for (let i = 0; i < 3; i++) native.progTestRun(prog, { data: udpPacket('10.0.0.2', '10.0.0.1', 53) });
  await until(() => seen > 0);
  await sleep(50);
  t.is(seen, 1);
  rb.close();
});

test('after close() the process exits; a throwing callback is an uncaught exception', (t) => {
  const script = (onSample: string): string => `
    const n = require(${JSON.stringify(addonPath)});
    const h = n.openObject(${JSON.stringify(obj)}, {});
    const prog = h.programs().find((p) => p.name === 'nt_classify').fd;
    const events = h.maps().find((m) => m.name === 'nt_events').fd;
    const rb = n.ringBufferOpen(events, (s) => { ${onSample} });
    const pkt = Buffer.alloc(64); pkt.writeUInt16BE(0x0800, 12); pkt[14] = 0x45;
    n.progTestRun(prog, { data: pkt });`;
  const out = execFileSync(process.execPath, ['-e', script('process.stdout.write("got " + s.length); rb.close();')], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  t.is(out, 'got 16');
  const err = t.throws(() =>
    execFileSync(process.execPath, ['-e', script('throw new Error("boom from callback");')], {
      encoding: 'utf8',
      stdio: 'pipe',
      timeout: 10_000,
    }),
  ) as Error & { status: number; stderr: string };
  t.is(err.status, 1);
  t.regex(err.stderr, /boom from callback/);
});

test('ring buffer errors', (t) => {
  const hash = native.mapCreate(1, 'nt_not_rb', 4, 4, 4, 0);
  t.teardown(() => native.closeFd(hash));
  const e = throwsNative(t, () => native.ringBufferOpen(hash, () => undefined), 'EINVAL', 'ring_buffer__new');
  t.regex(e.message, /^open ring buffer of map fd \d+: /);
  throwsNative(t, () => native.ringBufferOpen(987654, () => undefined), 'EBADFD', 'ring_buffer__new');
  throwsNative(t, () => native.ringBufferOpen(hash, 'x' as never), 'EINVAL', 'ringBufferOpen');
});
