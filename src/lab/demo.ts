// `lab demo`: the README's main job. Build the lab with agents from a state directory
// without its policies/, probe, apply the policies, wait for the agents, probe again.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Snapshot } from '../model/types';
import { waitForAgents } from './barrier';
import { labUp } from './lifecycle';
import { formatMatrix, matrixPairs, probePairs } from './probe';
import { concatYaml, copyStateDir, writeAtomic } from './workdir';

export interface DemoOptions {
  stateDir: string;
  prefix?: string;
  print: (text: string) => void;
}

export async function labDemo(snapshot: Snapshot, opts: DemoOptions): Promise<void> {
  const policiesDir = join(opts.stateDir, 'policies');
  if (!existsSync(policiesDir)) throw new Error(`lab demo ${opts.stateDir}: no policies/ folder to apply`);
  const state = await labUp(snapshot, {
    stateDir: opts.stateDir,
    prefix: opts.prefix,
    agents: true,
    log: opts.print,
    workingCopy: (dir) => copyStateDir(opts.stateDir, dir, ['policies']),
  });
  if (state.agents.length === 0)
    opts.print('WARNING: no agents are running, so policies are not enforced; both tables will match.');
  const ports = state.plan!.ports.map((p) => `${p.port}/${p.protocol}`);
  const table = async (title: string): Promise<void> => {
    const results = await probePairs(state, matrixPairs(state.plan!, ports));
    opts.print(`\n== ${title} ==\n${formatMatrix(results)}`);
  };
  await table(`no policies (${state.agentStateDir})`);
  // One file, renamed into place: the agents see all the policies at once.
  writeAtomic(join(state.agentStateDir, 'policies.yaml'), concatYaml(policiesDir));
  await waitForAgents(state);
  await table(`with ${policiesDir}`);
  opts.print(
    `Tear down with: netfence lab down --state ${opts.stateDir}${opts.prefix ? ` --prefix ${opts.prefix}` : ''}`,
  );
}
