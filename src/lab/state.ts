// The lab's record of what it created, written as it goes so `down` can undo a crash
// halfway through `up`: /run/netfence-lab/<name>.json.
import { mkdirSync, readFileSync, renameSync, writeFileSync, rmSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { LabPlan } from './plan';

export const LAB_RUN_DIR = process.env.NETFENCE_LAB_RUN_DIR ?? '/run/netfence-lab';
export const BPFFS_LAB_ROOT = '/sys/fs/bpf';

export interface AgentRecord {
  node: string;
  netns: string;
  pid: number;
  metricsAddress: string;
  log: string;
}

export interface LabState {
  name: string;
  prefix: string;
  /** The --state directory the lab was built from. */
  stateDir: string;
  /** The directory the agents read (the state dir itself, or a working copy). */
  agentStateDir: string;
  /** Everything `down` removes lives under these. */
  workDir: string;
  bpffsRoot: string;
  netns: string[];
  pids: number[];
  agents: AgentRecord[];
  plan?: Omit<LabPlan, 'ops'>;
  complete: boolean;
}

export function stateFile(name: string): string {
  return join(LAB_RUN_DIR, `${name}.json`);
}

export function labWorkDir(name: string): string {
  return join(LAB_RUN_DIR, name);
}

export function saveState(state: LabState): void {
  mkdirSync(LAB_RUN_DIR, { recursive: true });
  const file = stateFile(state.name);
  writeFileSync(`${file}.tmp`, JSON.stringify(state, null, 2));
  renameSync(`${file}.tmp`, file);
}

export function loadState(name: string): LabState | undefined {
  let text: string;
  try {
    text = readFileSync(stateFile(name), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`read lab state ${stateFile(name)}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text) as LabState;
  } catch (err) {
    throw new Error(`read lab state ${stateFile(name)}: ${(err as Error).message}`);
  }
}

export function removeState(name: string): void {
  rmSync(stateFile(name), { force: true });
  rmSync(`${stateFile(name)}.tmp`, { force: true });
}

/** Named network namespaces (ip netns list without the extra id column). */
export function listNetns(): string[] {
  try {
    return readdirSync('/run/netns');
  } catch {
    return [];
  }
}
