// `netfence lab up|probe|down|demo`: the state directory built as network namespaces on
// this machine (see src/lab/).
import type { Command } from 'commander';
import { loadStateDir } from '../sources/directory';
import type { Snapshot } from '../model/types';
import { waitForAgents } from '../lab/barrier';
import { labDemo } from '../lab/demo';
import { labDown, labNameFor, labUp } from '../lab/lifecycle';
import { formatMatrix, matrixPairs, parsePort, probePairs } from '../lab/probe';
import { loadState } from '../lab/state';

function loadTopology(dir: string): Snapshot {
  const snapshot = loadStateDir(dir);
  for (const e of snapshot.errors)
    process.stderr.write(`warning: ${e.file ?? dir}: ${e.object} ${e.field}: ${e.message}\n`);
  return snapshot;
}

const say = (line: string): void => void process.stdout.write(`${line}\n`);

interface LabOpts {
  state: string;
  prefix: string;
}

/** A lab subcommand with the options they all take: the state directory and the prefix. */
function labCommand(lab: Command, name: string, description: string, stateHelp = 'state directory'): Command {
  return lab
    .command(name)
    .description(description)
    .requiredOption('--state <dir>', stateHelp)
    .option('--prefix <p>', 'namespace name prefix', 'nf-');
}

export function register(program: Command): void {
  const lab = program
    .command('lab')
    .description('build the state as network namespaces on this machine, probe, tear down');

  labCommand(lab, 'up', 'create the lab: fabric, node and pod namespaces, servers, one agent per node')
    .option('--no-agent', 'do not start agents')
    .action(async (o: LabOpts & { agent: boolean }) => {
      const state = await labUp(loadTopology(o.state), {
        stateDir: o.state,
        prefix: o.prefix,
        agents: o.agent,
        log: say,
      });
      say(`lab ${state.name} is up (state file /run/netfence-lab/${state.name}.json)`);
    });

  labCommand(lab, 'probe', 'wait for the agents, then connect every ordered pair of pods for real')
    .option('--port <N/PROTO>', 'probe one port (default: every container port)')
    .option('--network <ns/nad>', 'probe the addresses on a secondary network')
    .option('--timeout <ms>', 'connect timeout per probe', '1000')
    .option('--json', 'print {"pairs":[...]}')
    .action(async (o: LabOpts & { port?: string; network?: string; timeout: string; json?: boolean }) => {
      const name = labNameFor(o.state, o.prefix);
      const state = loadState(name);
      if (!state?.complete) throw new Error(`probe lab ${name}: not up (run netfence lab up --state ${o.state})`);
      const timeoutMs = Number(o.timeout);
      if (!Number.isInteger(timeoutMs) || timeoutMs <= 0)
        throw new Error(`probe lab ${name}: --timeout "${o.timeout}": expected milliseconds`);
      if (o.port) parsePort(o.port);
      await waitForAgents(state);
      const ports = o.port ? [o.port.toUpperCase()] : state.plan!.ports.map((p) => `${p.port}/${p.protocol}`);
      const results = await probePairs(state, matrixPairs(state.plan!, ports, o.network), {
        timeoutMs,
        network: o.network,
      });
      say(o.json ? JSON.stringify({ pairs: results }) : formatMatrix(results));
    });

  labCommand(lab, 'down', 'stop the agents and remove everything the lab created').action(async (o: LabOpts) => {
    const name = labNameFor(o.state, o.prefix);
    await labDown(name, say);
    say(`lab ${name} is down`);
  });

  const demoHelp = 'lab up with agents, truth table without and with the policies/ folder';
  labCommand(lab, 'demo', demoHelp, 'state directory with a policies/ folder').action(async (o: LabOpts) => {
    await labDemo(loadTopology(o.state), {
      stateDir: o.state,
      prefix: o.prefix === 'nf-' ? undefined : o.prefix,
      print: say,
    });
  });
}
