// Drop events fanned out to `netfence flows` clients. A BPF ring buffer has one consumer
// position (each sample reaches one reader), so the agent is its only reader and every
// client gets every record the agent reads; the agent's own log keeps its rate limit.
// A client that falls too far behind is cut off rather than buffered without bound.
import type net from 'node:net';
import type { FlowRecord } from './flows';

/** Unsent bytes a client may have queued before it is cut off. */
export const MAX_CLIENT_BACKLOG = 4 << 20;

export class FlowFeed {
  private readonly clients = new Set<net.Socket>();

  constructor(private readonly onCutOff: (backlog: number) => void = () => {}) {}

  get size(): number {
    return this.clients.size;
  }

  add(sock: net.Socket): void {
    this.clients.add(sock);
    sock.once('close', () => this.clients.delete(sock));
  }

  publish(flow: FlowRecord): void {
    if (this.clients.size === 0) return;
    const line = `${JSON.stringify(flow)}\n`;
    for (const c of this.clients) {
      if (c.writableLength > MAX_CLIENT_BACKLOG) {
        this.onCutOff(c.writableLength);
        this.clients.delete(c);
        c.destroy();
      } else {
        c.write(line);
      }
    }
  }

  close(): void {
    for (const c of this.clients) c.destroy();
    this.clients.clear();
  }
}
