// Which state source `netfence agent` follows: a state directory (--state, the embedded
// mode), or the Kubernetes API through a kubeconfig (--kubeconfig) or the in-cluster
// service account (neither flag, KUBERNETES_SERVICE_HOST set). Exactly one; the
// NetfenceConfig comes from netfence.yaml in the state directory, or from --config.
import type { Logger } from 'pino';
import { buildSnapshot } from '../model/snapshot';
import type { NetfenceConfig } from '../model/types';
import { ParseCache, loadStateDirConfigAsync } from '../sources/directory';
import { DirectorySource } from '../sources/directory-source';
import type { SnapshotSource } from '../sources/source';

export type SourceChoice =
  | { kind: 'directory'; dir: string }
  /** kubeconfig absent = in-cluster credentials. */
  | { kind: 'kubernetes'; kubeconfig?: string; configFile?: string };

export interface SourceFlags {
  state?: string;
  kubeconfig?: string;
  config?: string;
}

export function chooseSource(f: SourceFlags, env: NodeJS.ProcessEnv): SourceChoice {
  if (f.state !== undefined && f.kubeconfig !== undefined) {
    throw new Error('start agent: --state and --kubeconfig: give one state source, not both');
  }
  if (f.state !== undefined) {
    if (f.config !== undefined) {
      throw new Error(
        'start agent: --config: only with the Kubernetes source (with --state, settings are netfence.yaml in the state directory)',
      );
    }
    return { kind: 'directory', dir: f.state };
  }
  if (f.kubeconfig !== undefined || env.KUBERNETES_SERVICE_HOST) {
    return {
      kind: 'kubernetes',
      ...(f.kubeconfig !== undefined && { kubeconfig: f.kubeconfig }),
      ...(f.config !== undefined && { configFile: f.config }),
    };
  }
  throw new Error(
    'start agent: no state source: give --state DIR or --kubeconfig FILE, or run in a cluster (KUBERNETES_SERVICE_HOST is not set)',
  );
}

export interface AgentSource {
  source: SnapshotSource;
  /** The settings at start (bpffs root and listen address cannot change later). */
  config: NetfenceConfig;
  describe: string;
}

export async function createAgentSource(
  choice: SourceChoice,
  opts: { log: Logger; resyncMs: number },
): Promise<AgentSource> {
  if (choice.kind === 'directory') {
    // The source's first load reuses what reading the settings parsed.
    const cache = new ParseCache();
    return {
      config: await loadStateDirConfigAsync(choice.dir, cache),
      source: new DirectorySource(choice.dir, { log: opts.log, resyncMs: opts.resyncMs, cache }),
      describe: `state directory ${choice.dir}`,
    };
  }
  // Loaded only for this source: the client library alone is ~50 MB of the agent's RSS.
  const { createKubernetesSource } = await import('../sources/kubernetes');
  return {
    source: createKubernetesSource({ kubeconfig: choice.kubeconfig, configFile: choice.configFile, log: opts.log }),
    config: await configFileSettings(choice.configFile),
    describe: `kubernetes API (${choice.kubeconfig ?? 'in-cluster'})`,
  };
}

/** The NetfenceConfig of a --config file (the built-in settings without one). */
export async function configFileSettings(configFile?: string): Promise<NetfenceConfig> {
  const { readConfigFile } = await import('../sources/kubernetes');
  const settings = buildSnapshot(configFile ? readConfigFile(configFile) : []);
  const bad = settings.errors[0];
  if (bad) throw new Error(`read config ${configFile}: ${bad.object} ${bad.field}: ${bad.message}`);
  return settings.config;
}
