// Entry point for e2e tests: `netfence agent` alone (independent of src/cli/main.ts).
import { Command } from 'commander';
import { register } from '../../../src/cli/agent';

const program = new Command('netfence');
register(program);
program.parseAsync(process.argv).catch((e: Error) => {
  process.stderr.write(`${e.message}\n`);
  process.exit(1);
});
