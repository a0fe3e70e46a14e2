// The agent's fan-out of drop events to `netfence flows` clients over real unix sockets:
// every client that keeps up gets every record, in order; one that stops reading is cut
// off once its backlog passes MAX_CLIENT_BACKLOG, without holding the others back.
import test from 'ava';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { FlowFeed, MAX_CLIENT_BACKLOG } from '../../src/agent/flow-feed';
import type { FlowRecord } from '../../src/agent/flows';

const record = (i: number): FlowRecord => ({
  time: new Date(0).toISOString(),
  verdict: 'DROPPED',
  drop_reason_desc: 'POLICY_DENY',
  traffic_direction: 'INGRESS',
  IP: { source: '10.0.0.1', destination: '10.0.0.2', ipVersion: 'IPv4' },
  l4: { TCP: { source_port: i, destination_port: 80 } },
  source: {},
  destination: { namespace: 'demo', pod_name: 'x'.repeat(1000) },
  interface: { index: 1 },
});

test('every reading client gets every record; a client that stops reading is cut off alone', async (t) => {
  t.timeout(30_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nf-feed-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const cutOff: number[] = [];
  const feed = new FlowFeed((backlog) => cutOff.push(backlog));
  const server = net.createServer((s) => feed.add(s));
  await new Promise<void>((r) => server.listen(path.join(dir, 's.sock'), r));
  t.teardown(() => server.close());

  const reader = net.connect(path.join(dir, 's.sock'));
  const stalled = net.connect(path.join(dir, 's.sock'));
  stalled.pause();
  t.teardown(() => [reader, stalled].forEach((s) => s.destroy()));
  let received = '';
  reader.on('data', (d: Buffer) => (received += d));
  for (; feed.size < 2;) await new Promise((r) => setTimeout(r, 5));

  const total = 10_000; // ~11 MB: more than twice the backlog limit
  for (let i = 0; i < total; i++) {
    feed.publish(record(i));
    if (i % 100 === 99) await new Promise((r) => setImmediate(r)); // the event loop drains the reader
  }
  for (const deadline = Date.now() + 10_000; received.split('\n').length <= total && Date.now() < deadline;)
    await new Promise((r) => setTimeout(r, 10));

  const ports = received
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as FlowRecord).l4.TCP.source_port);
  t.is(ports.length, total);
  t.deepEqual(
    ports,
    Array.from({ length: total }, (_, i) => i),
    'all records, in order',
  );
  t.is(cutOff.length, 1);
  t.true(cutOff[0] > MAX_CLIENT_BACKLOG);
  t.is(feed.size, 1, 'only the reader is left');
  feed.close();
});
