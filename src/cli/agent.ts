// `netfence agent`: enforce the state directory's policies on this node.
import type { Command } from 'commander';
import pino from 'pino';
import { Agent } from '../agent/agent';
import { CniServer } from '../agent/cni-server';
import { startHttp } from '../agent/http';
import { loadStateDirAsync } from '../sources/directory';

interface AgentFlags {
  state: string;
  node?: string;
  bpffsRoot?: string;
  metricsAddress?: string;
  socket?: string;
  object?: string;
  sysfsRoot: string;
  resyncSeconds: string;
  logLevel: string;
}

export function register(program: Command): void {
  program
    .command('agent')
    .description('enforce the policies of a state directory on this node (tc-BPF)')
    .requiredOption('--state <dir>', 'state directory (Kubernetes YAML, netfence.yaml)')
    .option('--node <name>', 'node name (default: $NODE_NAME)')
    .option('--bpffs-root <path>', 'bpffs directory for pinned maps and links (default: config.bpffsRoot or /sys/fs/bpf/netfence)')
    .option('--metrics-address <host:port>', 'health and metrics listener (default: config.metricsAddress or 127.0.0.1:9750)')
    .option('--socket <path>', 'CNI request socket')
    .option('--object <path>', 'BPF object (default: bpf/.output/netfence.bpf.o of this package)')
    .option('--sysfs-root <path>', 'sysfs root for VF representor discovery', '/sys')
    .option('--resync-seconds <n>', 'periodic full resync', '30')
    .option('--log-level <level>', 'pino log level', 'info')
    .action(async (f: AgentFlags) => {
      const log = pino({ level: f.logLevel });
      const node = f.node ?? process.env.NODE_NAME;
      if (!node) throw new Error('start agent: no node name (--node or NODE_NAME)');
      const agent = new Agent(
        (await import('../datapath/native')).native,
        {
          stateDir: f.state,
          nodeName: node,
          bpffsRoot: f.bpffsRoot,
          objectPath: f.object,
          sysfsRoot: f.sysfsRoot,
          resyncMs: Number(f.resyncSeconds) * 1000,
        },
        log,
      );
      const config = (await loadStateDirAsync(f.state)).config;
      const address = f.metricsAddress ?? (config.metricsAddress || '127.0.0.1:9750');
      const server = await startHttp(address, () => agent.status, agent.metrics.registry);
      const cni = f.socket
        ? new CniServer(
            {
              add: (req) => agent.programPod(`${req.podNamespace}/${req.podName}`),
              del: async () => void agent.apply('cni del'),
              check: async (req) => agent.isProgrammed(`${req.podNamespace}/${req.podName}`),
            },
            (e) => log.error({ err: e }, 'cni socket'),
          )
        : undefined;
      const shutdown = (signal: string): void => {
        // Pinned maps and links stay: enforcement continues without the agent.
        log.info({ signal }, 'stopping; enforcement stays pinned');
        agent.stop();
        server.close();
        void cni?.close();
        process.exit(0);
      };
      process.on('SIGTERM', () => shutdown('SIGTERM'));
      process.on('SIGINT', () => shutdown('SIGINT'));
      await agent.start();
      if (cni && f.socket) await cni.listen(f.socket);
      log.info({ address, generation: agent.status.generation, ready: agent.status.ready }, 'agent started');
    });
}
