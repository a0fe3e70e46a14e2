// `lab up` and `lab down`: build the plan in namespaces, start servers and agents, and
// undo all of it from the state file (also after a crash halfway through up).
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { namesFilePath } from '../agent/names-file';
import type { Snapshot } from '../model/types';
import { run, tryRun } from './exec';
import { labName, planLab } from './plan';
import { agentCommandAvailable, killNetnsProcesses, startAgent, startServer } from './processes';
import { BPFFS_LAB_ROOT, labWorkDir, listNetns, loadState, removeState, saveState, type LabState } from './state';
import { waitForAgents } from './barrier';

export interface UpOptions {
  /** The --state directory: the lab's identity. */
  stateDir: string;
  /** When given, agents read a working copy (<workDir>/state) that this fills in after
   *  the old lab is gone; otherwise they read stateDir itself. */
  workingCopy?: (dir: string) => void;
  prefix?: string;
  agents: boolean;
  /** Progress lines (the CLI prints them). */
  log?: (line: string) => void;
  /** Test hook: stop after this many plan ops, as if `up` crashed there. */
  crashAfterOps?: number;
}

export const AGENT_METRICS_ADDRESS = '127.0.0.1:9402';

export function labNameFor(stateDir: string, prefix = 'nf-'): string {
  return labName(resolve(stateDir), prefix);
}

export async function labUp(snapshot: Snapshot, opts: UpOptions): Promise<LabState> {
  const log = opts.log ?? (() => undefined);
  const prefix = opts.prefix ?? 'nf-';
  const stateDir = resolve(opts.stateDir);
  const plan = planLab(snapshot, { id: stateDir, prefix });
  await labDown(plan.name, log); // replaces a previous or crashed lab of the same state dir
  const workDir = labWorkDir(plan.name);
  mkdirSync(workDir, { recursive: true });
  const agentStateDir = opts.workingCopy ? join(workDir, 'state') : stateDir;
  if (opts.workingCopy) {
    mkdirSync(agentStateDir, { recursive: true });
    opts.workingCopy(agentStateDir);
  }
  const { ops, ...planRecord } = plan;
  const state: LabState = {
    name: plan.name,
    prefix,
    stateDir,
    agentStateDir,
    workDir,
    bpffsRoot: join(BPFFS_LAB_ROOT, plan.name),
    netns: [],
    pids: [],
    agents: [],
    plan: planRecord,
    complete: false,
  };
  saveState(state);
  log(`lab ${plan.name}: ${plan.nodes.length} nodes, ${plan.pods.length} pods, ${ops.length} set-up commands`);
  for (const nad of snapshot.networkAttachmentDefinitions.filter((n) => n.vlan !== undefined)) {
    log(
      `lab ${plan.name}: ${nad.namespace}/${nad.name} (vlan ${nad.vlan}): representors bridged as an embedded switch would; pod traffic is untagged (no 8021q here), tagged frames are hand-built (test/e2e/fixtures/rawframe)`,
    );
  }
  for (const [i, op] of ops.entries()) {
    if (opts.crashAfterOps !== undefined && i >= opts.crashAfterOps)
      throw new Error(`lab up ${plan.name}: simulated crash after ${i} ops`);
    if (op.netns) {
      state.netns.push(op.netns);
      saveState(state);
    }
    await run(op.argv);
  }
  const record = (pid: number): void => {
    state.pids.push(pid);
    saveState(state);
  };
  await Promise.all(plan.servers.map((s) => startServer(s, workDir, record)));
  log(`lab ${plan.name}: ${plan.servers.length} servers listening`);

  if (opts.agents && !(await agentCommandAvailable())) {
    log(`lab ${plan.name}: the agent command is not built; running without agents`);
  } else if (opts.agents) {
    for (const node of plan.nodes) {
      const bpffsRoot = join(state.bpffsRoot, node.name);
      mkdirSync(bpffsRoot, { recursive: true });
      const { pid, log: agentLog } = startAgent(
        {
          node: node.name,
          netns: node.netns,
          stateDir: state.agentStateDir,
          bpffsRoot,
          metricsAddress: AGENT_METRICS_ADDRESS,
        },
        workDir,
      );
      state.agents.push({
        node: node.name,
        netns: node.netns,
        pid,
        metricsAddress: AGENT_METRICS_ADDRESS,
        log: agentLog,
      });
      record(pid);
    }
    await waitForAgents(state).catch((err: Error) => {
      throw new Error(`${err.message} (agent logs: ${state.agents.map((a) => a.log).join(', ')})`);
    });
    log(`lab ${plan.name}: ${state.agents.length} agents ready`);
  }
  state.complete = true;
  saveState(state);
  return state;
}

/** Removes everything a lab created; safe to run any number of times. */
export async function labDown(name: string, log: (line: string) => void = () => undefined): Promise<void> {
  const state = loadState(name);
  const netns = new Set([...(state?.netns ?? []), ...listNetns().filter((n) => n.startsWith(`${name}-`))]);
  await Promise.all([...netns].map(killNetnsProcesses));
  for (const ns of netns) await tryRun(['ip', 'netns', 'del', ns]);
  const left = listNetns().filter((n) => netns.has(n));
  if (left.length > 0) throw new Error(`lab down ${name}: namespaces still present: ${left.join(', ')}`);
  const labPins = join(BPFFS_LAB_ROOT, name);
  // Each node's agent keeps its names and last-good files in a run dir keyed by its bpffs root.
  const nodeRoots = existsSync(labPins) ? readdirSync(labPins).map((node) => join(labPins, node)) : [];
  for (const root of nodeRoots) rmSync(dirname(namesFilePath(root)), { recursive: true, force: true });
  rmSync(labPins, { recursive: true, force: true });
  rmSync(labWorkDir(name), { recursive: true, force: true });
  removeState(name);
  if (netns.size > 0) log(`lab ${name}: removed ${netns.size} namespaces`);
}
