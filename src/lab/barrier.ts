// The generation barrier: wait until every lab agent reports (on its /readyz JSON, polled
// inside its node netns) a generation at least as new as the state the caller wrote.
import { labScript, run } from './exec';
import type { AgentRecord, LabState } from './state';

export interface AgentStatus {
  node: string;
  generation: number;
  body: Record<string, unknown>;
}

async function readyz(agent: AgentRecord, minGeneration: number, timeoutMs: number): Promise<AgentStatus> {
  const url = `http://${agent.metricsAddress}/readyz`;
  const argv = ['ip', 'netns', 'exec', agent.netns, process.execPath, labScript('client'), 'readyz', url, String(minGeneration), String(timeoutMs)];
  const { stdout } = await run(argv, undefined, timeoutMs + 5000);
  const body = JSON.parse(stdout) as Record<string, unknown>;
  return { node: agent.node, generation: body.generation as number, body };
}

/** Current generation of every agent (each must be ready). */
export async function agentGenerations(state: LabState, timeoutMs = 30_000): Promise<Map<string, number>> {
  const statuses = await Promise.all(state.agents.map((a) => readyz(a, 0, timeoutMs)));
  return new Map(statuses.map((s) => [s.node, s.generation]));
}

/** Waits until each agent's generation exceeds `after` (from agentGenerations before the
 *  change), or is at least 1 when no baseline is given. */
export async function waitForAgents(state: LabState, after?: Map<string, number>, timeoutMs = 30_000): Promise<AgentStatus[]> {
  return Promise.all(state.agents.map((a) => readyz(a, after ? (after.get(a.node) ?? 0) + 1 : 1, timeoutMs)));
}
