// Lab workload server: one process per pod (or node, or fabric) netns serving every port.
// TCP and UDP answer each request with "netfence <label>" so a probe knows who replied.
// Usage: node server.js LABEL PORT/PROTO...
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';

async function main(argv: string[]): Promise<void> {
  const [label, ...specs] = argv;
  if (!label) throw new Error('start lab server: usage: server.js LABEL PORT/PROTO...');
  const reply = Buffer.from(`netfence ${label}\n`);
  await Promise.all(
    specs.map((spec) => {
      const m = /^(\d+)\/(TCP|UDP)$/.exec(spec);
      if (!m) throw new Error(`start lab server ${label}: port "${spec}": expected N/TCP or N/UDP`);
      const port = Number(m[1]);
      return m[2] === 'TCP' ? listenTcp(port, reply) : listenUdp(port, reply);
    }),
  );
  process.stdout.write(`ready ${label}\n`);
}

function listenTcp(port: number, reply: Buffer): Promise<void> {
  const server = createServer((sock) => {
    sock.on('data', () => sock.write(reply));
    sock.on('error', () => sock.destroy());
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`listen tcp ${port}: ${err.message}`)));
    server.listen({ port, host: '::', ipv6Only: false }, resolve);
  });
}

function listenUdp(port: number, reply: Buffer): Promise<void> {
  const sock = createSocket({ type: 'udp6', ipv6Only: false });
  sock.on('message', (_msg, rinfo) => sock.send(reply, rinfo.port, rinfo.address));
  return new Promise((resolve, reject) => {
    sock.once('error', (err) => reject(new Error(`listen udp ${port}: ${err.message}`)));
    sock.bind({ port, address: '::' }, resolve);
  });
}

main(process.argv.slice(2)).catch((err: Error) => {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
});
