// The generation barrier: wait until every lab agent reports, on its /readyz JSON (polled
// inside its node netns), that it applied exactly the state directory's current content
// (stateHash). The agent reports the hash of its latest apply, so after a change the
// hashes match only once that change is enforced.
import { stateDirHash } from '../sources/state-hash';
import { labScript, run } from './exec';
import type { AgentRecord, LabState } from './state';

export interface AgentStatus {
  node: string;
  generation: number;
  body: Record<string, unknown>;
}

/** Polls one agent's /readyz until it is ready and reports `stateHash`. */
export async function readyz(agent: AgentRecord, stateHash: string, timeoutMs: number): Promise<AgentStatus> {
  const url = `http://${agent.metricsAddress}/readyz`;
  const argv = [
    'ip',
    'netns',
    'exec',
    agent.netns,
    process.execPath,
    labScript('client'),
    'readyz',
    url,
    stateHash,
    String(timeoutMs),
  ];
  const { stdout } = await run(argv, undefined, timeoutMs + 5000);
  const body = JSON.parse(stdout) as Record<string, unknown>;
  return { node: agent.node, generation: body.generation as number, body };
}

/** Waits until each agent is ready and enforces the agents' state directory as it is now. */
export async function waitForAgents(state: LabState, timeoutMs = 30_000): Promise<AgentStatus[]> {
  const hash = await stateDirHash(state.agentStateDir);
  return Promise.all(state.agents.map((a) => readyz(a, hash, timeoutMs)));
}
