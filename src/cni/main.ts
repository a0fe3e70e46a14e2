#!/usr/bin/env node
// netfence-cni's node entry point (the bundle): the plugin executable (cni/netfence-cni.c)
// runs it when the agent cannot answer, with the same CNI_* environment and stdin; the
// result or error JSON goes to stdout. Plain reads and writes on fds 0-2:
// process.stdin/stdout would load the stream machinery, about a quarter of node's own
// start-up cost.
import fs from 'node:fs';
import { AgentUnreachableError } from './agent-client';
import { runPlugin, socketLink, type AgentLink } from './plugin';

/** Set by the executable when it spent the agent's deadline already: why the agent did not
 *  answer. The plugin then answers as for an unreachable agent without waiting again (a DEL
 *  must not wait twice). */
const UNREACHABLE_ENV = 'NETFENCE_CNI_UNREACHABLE';

function unreachableLink(why: string): AgentLink {
  return {
    ask: () => Promise.reject(new AgentUnreachableError(why)),
    reachable: () => Promise.resolve(false),
  };
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/** Runs a synchronous fd operation, waiting out EAGAIN (a non-blocking pipe from the runtime). */
function retrying<T>(op: () => T): T {
  for (;;) {
    try {
      return op();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      Atomics.wait(pause, 0, 0, 1);
    }
  }
}

function readStdin(): string {
  const chunks: Buffer[] = [];
  const buf = Buffer.allocUnsafe(1 << 16);
  try {
    for (let n; (n = retrying(() => fs.readSync(0, buf))) > 0;) chunks.push(Buffer.from(buf.subarray(0, n)));
  } catch (err) {
    // No stdin at all (closed descriptor): VERSION needs none, the others report the empty config.
    if ((err as NodeJS.ErrnoException).code !== 'EBADF') throw err;
  }
  return Buffer.concat(chunks).toString('utf8');
}

function writeAll(fd: number, text: string): void {
  const data = Buffer.from(text);
  for (let off = 0; off < data.length;) off += retrying(() => fs.writeSync(fd, data, off));
}

void (async () => {
  const why = process.env[UNREACHABLE_ENV];
  const out = await runPlugin(process.env, readStdin(), why ? unreachableLink(why) : socketLink);
  if (out.stderr) writeAll(2, out.stderr);
  writeAll(1, out.stdout);
  process.exit(out.exitCode);
})();
