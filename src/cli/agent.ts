// `netfence agent`: enforce the policies of a state source (a state directory, or the
// Kubernetes API) on this node.
import { Command } from 'commander';
import pino from 'pino';
import { Agent } from '../agent/agent';
import { AgentSocket, agentSocketPath } from '../agent/agent-socket';
import { startHttp } from '../agent/http';
import { lockBpffsRoot } from '../agent/instance-lock';
import { ensureBpffsRoot } from '../datapath/bpffs';
import { DEFAULT_BPFFS_ROOT } from '../datapath/loader';
import { chooseSource, createAgentSource } from './agent-source';

/** SIGTERM/SIGINT end the agent within 2 s: the handlers exit at once, the watchdog after this. */
const STOP_DEADLINE_MS = 1000;

interface AgentFlags {
  state?: string;
  kubeconfig?: string;
  config?: string;
  node?: string;
  bpffsRoot?: string;
  metricsAddress?: string;
  socket?: string;
  object?: string;
  sysfsRoot: string;
  procRoot: string;
  resyncSeconds: string;
  logLevel: string;
}

/** The command definition (also read by tests: the DaemonSet may only pass these flags). */
export function agentCommand(): Command {
  return new Command('agent')
    .description('enforce the policies of a state directory or of the Kubernetes API on this node (tc-BPF)')
    .option('--state <dir>', 'state directory (Kubernetes YAML, netfence.yaml): the embedded mode')
    .option(
      '--kubeconfig <file>',
      'follow the Kubernetes API with this kubeconfig (default without --state: in-cluster credentials)',
    )
    .option('--config <file>', 'NetfenceConfig file for the Kubernetes source (default: built-in settings)')
    .option('--node <name>', 'node name (default: $NODE_NAME)')
    .option(
      '--bpffs-root <path>',
      `bpffs directory for pinned maps and links (default: config.bpffsRoot or ${DEFAULT_BPFFS_ROOT})`,
    )
    .option('--metrics-address <host:port>', 'health and metrics listener (default: config.metricsAddress)')
    .option(
      '--socket <path>',
      'one more path for the agent socket (CNI requests, flows), besides /run/netfence/<hash of the bpffs root>/agent.sock',
    )
    .option('--object <path>', 'BPF object (default: bpf/.output/netfence.bpf.o of this package)')
    .option('--sysfs-root <path>', 'sysfs root for VF representor discovery', '/sys')
    .option('--proc-root <path>', 'procfs root for the sysctls the tunnel writes (<path>/sys/net)', '/proc')
    .option('--resync-seconds <n>', 'periodic full pass (and state directory reload)', '30')
    .option('--log-level <level>', 'pino log level', 'info')
    .action(async (f: AgentFlags) => {
      const log = pino({ level: f.logLevel });
      const node = f.node ?? process.env.NODE_NAME;
      if (!node) throw new Error('start agent: no node name (--node or NODE_NAME)');
      const resyncMs = Number(f.resyncSeconds) * 1000;
      if (!(resyncMs > 0))
        throw new Error(`start agent: --resync-seconds: expected a positive number, got "${f.resyncSeconds}"`);
      const { source, config, describe } = await createAgentSource(chooseSource(f, process.env), { log, resyncMs });
      const { native } = await import('../datapath/native');
      const bpffsRoot = f.bpffsRoot ?? (config.bpffsRoot || DEFAULT_BPFFS_ROOT);
      const { mounted } = ensureBpffsRoot(bpffsRoot, { mount: (dir) => native.mountBpffs(dir) });
      if (mounted)
        log.warn(
          { bpffs: mounted },
          `mounted a bpffs at ${mounted}: pins last as long as this mount (mount the host's bpffs there for enforcement that outlives the agent)`,
        );
      // Held (never closed) for the process life: a second agent on this root exits here.
      lockBpffsRoot(native, bpffsRoot);
      const agent = new Agent(
        native,
        {
          source,
          nodeName: node,
          bpffsRoot,
          objectPath: f.object,
          capacity: config.capacity,
          sysfsRoot: f.sysfsRoot,
          procRoot: f.procRoot,
          resyncMs,
        },
        log,
      );
      const address = f.metricsAddress ?? config.metricsAddress;
      const server = await startHttp(address, () => agent.status, agent.metrics.registry);
      const socket = new AgentSocket(
        {
          add: (req) => agent.cniAdd(req),
          del: (req) => agent.cniDel(req),
          check: async (req) => agent.cniCheck(req),
          flows: (sock) => agent.flowFeed.add(sock),
        },
        (e) => log.error({ err: e }, 'agent socket'),
      );
      const shutdown = (signal: string): void => {
        // Pinned maps and links stay: enforcement continues without the agent.
        log.info({ signal }, 'stopping; enforcement stays pinned');
        agent.stop();
        server.close();
        void socket.close();
        process.exit(0);
      };
      process.on('SIGTERM', () => shutdown('SIGTERM'));
      process.on('SIGINT', () => shutdown('SIGINT'));
      // A program load or a long pass blocks the JS thread: the native watchdog ends the
      // process if the handlers above cannot run in time (pins stay either way).
      native.exitAfterSignal(STOP_DEADLINE_MS);
      await agent.start();
      const sockets = [agentSocketPath(bpffsRoot), ...(f.socket ? [f.socket] : [])];
      for (const p of sockets) await socket.listen(p);
      log.info({ address, source: describe, sockets }, 'agent started');
    });
}

export function register(program: Command): void {
  program.addCommand(agentCommand());
}
