// The generation barrier: wait until every lab agent reports, on its /readyz JSON (polled
// inside its node netns), that it applied exactly the state directory's current content
// (stateHash), at a generation newer than a baseline when the caller gives one.
import { stateDirHash } from '../agent/state-hash';
import { labScript, run } from './exec';
import type { AgentRecord, LabState } from './state';

export interface AgentStatus {
  node: string;
  generation: number;
  body: Record<string, unknown>;
}

async function readyz(agent: AgentRecord, minGeneration: number, stateHash: string | undefined, timeoutMs: number): Promise<AgentStatus> {
  const url = `http://${agent.metricsAddress}/readyz`;
  const argv = ['ip', 'netns', 'exec', agent.netns, process.execPath, labScript('client'), 'readyz', url, String(minGeneration), String(timeoutMs)];
  if (stateHash) argv.push(stateHash);
  const { stdout } = await run(argv, undefined, timeoutMs + 5000);
  const body = JSON.parse(stdout) as Record<string, unknown>;
  return { node: agent.node, generation: body.generation as number, body };
}

/** Current generation of every agent (each must be ready). */
export async function agentGenerations(state: LabState, timeoutMs = 30_000): Promise<Map<string, number>> {
  const statuses = await Promise.all(state.agents.map((a) => readyz(a, 0, undefined, timeoutMs)));
  return new Map(statuses.map((s) => [s.node, s.generation]));
}

/** Waits until each agent is ready, enforces the agents' state directory as it is now, and
 *  (with `after`, from agentGenerations before the change) has moved past that generation. */
export async function waitForAgents(state: LabState, after?: Map<string, number>, timeoutMs = 30_000): Promise<AgentStatus[]> {
  const hash = await stateDirHash(state.agentStateDir);
  return Promise.all(state.agents.map((a) => readyz(a, after ? (after.get(a.node) ?? 0) + 1 : 1, hash, timeoutMs)));
}
