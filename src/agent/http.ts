// /healthz (process alive), /readyz (first successful apply done; JSON with the applied
// generation and state hash: the barrier the lab waits on) and /metrics.
import http from 'node:http';
import type { Registry } from 'prom-client';
import type { AgentStatus } from './agent';

export function parseHostPort(text: string): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(text);
  if (!m || Number(m[2]) > 65535) throw new Error(`parse metrics address "${text}": expected host:port`);
  return { host: m[1] || '127.0.0.1', port: Number(m[2]) };
}

export async function startHttp(address: string, status: () => AgentStatus, registry: Registry): Promise<http.Server> {
  const { host, port } = parseHostPort(address);
  const server = http.createServer((req, res) => {
    const send = (code: number, type: string, body: string): void => {
      res.writeHead(code, { 'content-type': type });
      res.end(body);
    };
    const url = (req.url ?? '/').split('?')[0];
    if (url === '/healthz') return send(200, 'text/plain', 'ok\n');
    if (url === '/readyz') {
      const s = status();
      return send(s.ready ? 200 : 503, 'application/json', `${JSON.stringify(s)}\n`);
    }
    if (url === '/metrics') {
      registry.metrics().then(
        (text) => send(200, registry.contentType, text),
        (e: Error) => send(500, 'text/plain', `collect metrics: ${e.message}\n`),
      );
      return;
    }
    send(404, 'text/plain', 'not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new Error(`listen on ${address}: ${e.message}`)));
    server.listen(port, host, () => resolve());
  });
  return server;
}
