#!/usr/bin/env node
// netfence-cni entry point: the container runtime runs it with CNI_* in the environment
// and the network config on stdin; the result or error JSON goes to stdout.
import { runPlugin } from './plugin';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

void (async () => {
  const out = await runPlugin(process.env, await readStdin());
  if (out.stderr) process.stderr.write(out.stderr);
  process.stdout.write(out.stdout, () => process.exit(out.exitCode));
})();
