// `netfence cleanup`: removes what netfence put on this node (network namespace), for an
// uninstall: the agent's pinned hooks keep enforcing a frozen policy after it is gone.
import { Command } from 'commander';
import fs from 'node:fs';
import { lockBpffsRoot } from '../agent/instance-lock';
import { planCleanup, runCleanup } from '../agent/node-cleanup';
import { DEFAULT_BPFFS_ROOT } from '../datapath/loader';
import { defaultConfig, DEFAULT_REDIRECT_TABLE } from '../model/config';
import type { NetfenceConfig } from '../model/types';
import { loadStateDirConfigAsync } from '../sources/directory';
import { configFileSettings } from './agent-source';

interface CleanupFlags {
  state?: string;
  config?: string;
  bpffsRoot?: string;
  socket?: string;
  dryRun?: boolean;
}

const HELP = `
Run it where the agent ran (the node's network namespace, its bpffs and /run), after the
agent is stopped (DaemonSet deleted): it refuses while an agent holds the bpffs root.
Removes, and prints each:
  - netfence's tc hooks: the TCX links pinned under <root>/links, the clsact filters of
    the markers under <root>/filters, and every other clsact filter at netfence's places
    (handle 0x4e46 at priority 1 or 0x4e46, the spare handle 0x4e47 at priority 1) whose
    program is netfence's (nf_tc_ingress, nf_tc_egress), on every interface of this
    network namespace (markers lost, bpffs root removed);
  - the transparent tunnel's ip rules and routes (protocol 0x4e, the configured table), and
    the uplink's rp_filter goes back to the value the agent recorded before it set 2 (loose;
    unless someone changed it since);
  - the pinned maps and programs under the bpffs root, and the root once empty;
  - the agent's files in /run/netfence/<hash of the root>/ and its sockets no one serves.
Stays: the clsact qdiscs (netfence does not record which ones it created; other filters
may use them), other owners' filters, and a bpffs the agent mounted.
netfence attaches no XDP program. A second run finds nothing and exits 0. Exit code 1 if
a step failed (the others still ran).`;

async function settings(f: CleanupFlags): Promise<NetfenceConfig> {
  if (f.state !== undefined && f.config !== undefined)
    throw new Error('cleanup: --state and --config: give the settings the agent used, one of them');
  if (f.state !== undefined) return loadStateDirConfigAsync(f.state);
  if (f.config !== undefined) return configFileSettings(f.config);
  return defaultConfig();
}

export function register(program: Command): void {
  program
    .command('cleanup')
    .description('remove everything netfence put on this node: hooks, tunnel routing, pins, agent files')
    .option('--state <dir>', "the agent's state directory (its netfence.yaml gives the bpffs root and tunnel table)")
    .option('--config <file>', "the agent's NetfenceConfig file (Kubernetes source)")
    .option('--bpffs-root <path>', `bpffs directory of the agent (default: config.bpffsRoot or ${DEFAULT_BPFFS_ROOT})`)
    .option('--socket <path>', "the agent's extra socket path (its --socket), removed when no one serves it")
    .option('--dry-run', 'list what would be removed, remove nothing')
    .addHelpText('after', HELP)
    .action(async (f: CleanupFlags) => {
      const config = await settings(f);
      const bpffsRoot = f.bpffsRoot ?? (config.bpffsRoot || DEFAULT_BPFFS_ROOT);
      const { native } = await import('../datapath/native');
      // Held until exit: no agent starts on this root while it is being removed.
      try {
        if (fs.existsSync(bpffsRoot)) lockBpffsRoot(native, bpffsRoot);
      } catch (e) {
        throw new Error(`cleanup refused, stop the agent first: ${(e as Error).message}`);
      }
      const steps = await planCleanup(native, {
        bpffsRoot,
        tunnelTable: config.redirect?.table ?? DEFAULT_REDIRECT_TABLE,
        sockets: f.socket ? [f.socket] : [],
      });
      if (steps.length === 0) {
        process.stdout.write('nothing to clean up\n');
        return;
      }
      if (f.dryRun) {
        for (const s of steps) process.stdout.write(`would remove ${s.what}\n`);
        return;
      }
      const failed = runCleanup(steps, (s) => process.stdout.write(`removed ${s.what}\n`));
      if (failed.length > 0) throw new Error(`cleanup: ${failed.length} step(s) failed:\n  ${failed.join('\n  ')}`);
    });
}
