#!/usr/bin/env node
// `netfence`: one module per subcommand, each exporting register(program).
import { Command } from 'commander';
import * as agent from './agent';
import * as cleanup from './cleanup';
import * as compile from './compile';
import * as flows from './flows';
import * as inspect from './inspect';
import * as lab from './lab';
import * as trace from './trace';

const commands: { register(program: Command): void }[] = [agent, compile, trace, lab, inspect, flows, cleanup];

const program = new Command('netfence').description('Kubernetes network-policy enforcement with tc-BPF');
for (const c of commands) c.register(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`netfence: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
