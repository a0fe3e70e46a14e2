// `netfence cleanup`: what netfence put on this node (network namespace), found and removed
// so an uninstall stops enforcement: pinned hooks outlive the agent, and clsact filters
// outlive even their markers and the bpffs root. Found by
// - the pins under the bpffs root: TCX links and filter markers (detached as the agent
//   detaches a stale hook), the maps and programs;
// - a scan of every interface for a filter at netfence's handle running one of its
//   programs (markers lost, root removed);
// - the tunnel's ip rules and routes (tagged NF_RT_PROTO) and the configured table, and
//   the uplink's rp_filter recorded before the tunnel loosened it (agent/rp-filter-record);
// - the agent's run directory (names, last-good, sandboxes and rp_filter files, its sockets).
// Planned first (--dry-run prints the plan), then each step run; a failed step does not
// stop the others.
import fs from 'node:fs';
import path from 'node:path';
import { canConnect } from '../cni/protocol';
import { detachHook, ifindexesByName, pinnedHooks } from '../datapath/attach';
import { loaderPins, PROGRAMS } from '../datapath/loader';
import type { NativeAddon, Route, RouteRule, TcDirection } from '../datapath/native-api';
import { ownedRouting, RP_FILTER_LOOSE } from '../redirect/tunnel';
import { agentSocketPath } from './agent-socket';
import { lastGoodFilePath } from './last-good-file';
import { namesFilePath } from './names-file';
import { RpFilterRecord, rpFilterRecordPath } from './rp-filter-record';
import { sandboxesFilePath } from './sandboxes';

export interface CleanupOptions {
  bpffsRoot: string;
  /** The tunnel's routing table in the config: its routes go also after their rule. */
  tunnelTable: number;
  /** More agent socket paths (the agent's --socket). */
  sockets?: string[];
  /** Default /run/netfence (tests). */
  runDir?: string;
}

export interface CleanupStep {
  what: string;
  run(): void;
}

const DIRS: readonly TcDirection[] = ['ingress', 'egress'];
const OUR_PROGRAMS = new Set<string>(PROGRAMS);

function hookSteps(addon: NativeAddon, root: string): CleanupStep[] {
  const hooks = pinnedHooks(root);
  const ifindexes = ifindexesByName(addon);
  const pinned = new Set(hooks.map((h) => `${h.ifname}-${h.dir}`));
  const steps = hooks.map(({ ifname, dir }) => {
    const ifindex = ifindexes.get(ifname) ?? 0;
    return {
      what: `${dir} hook of ${ifname}${ifindex === 0 ? ' (interface gone: its pins)' : ''}`,
      run: () => detachHook(addon, root, { ifname, ifindex }, dir),
    };
  });
  // Filters no marker records: one of netfence's programs at its handle.
  for (const [ifname, ifindex] of ifindexes) {
    for (const dir of DIRS) {
      if (pinned.has(`${ifname}-${dir}`)) continue;
      for (const f of addon.tcFilters(ifindex, dir)) {
        if (!f.progName || !OUR_PROGRAMS.has(f.progName)) continue;
        steps.push({
          what: `${dir} filter of ${ifname} (priority ${f.priority}, handle 0x${f.handle.toString(16)}, program ${f.progId} ${f.progName}, no marker)`,
          run: () => addon.tcFilterDelete(ifindex, dir, f.priority, f.handle),
        });
      }
    }
  }
  return steps;
}

const ruleText = (r: RouteRule): string =>
  `ip rule ipv${r.family} priority ${r.priority}${r.mark === undefined ? '' : ` fwmark 0x${r.mark.toString(16)}/0x${(r.mask ?? 0xffffffff).toString(16)}`} table ${r.table}`;
const routeText = (r: Route): string =>
  `route ${r.dst}${r.gateway ? ` via ${r.gateway}` : ''}${r.oif ? ` oif ${r.oif}` : ''} table ${r.table}`;

function routingSteps(addon: NativeAddon, table: number): CleanupStep[] {
  const { rules, routes } = ownedRouting(addon, table);
  // Rules first: nothing is steered into a table while its routes go.
  return [
    ...rules.map((r) => ({ what: ruleText(r), run: () => addon.ruleDelete(r) })),
    ...routes.map((r) => ({ what: routeText(r), run: () => addon.routeDelete(r) })),
  ];
}

/** The uplinks' rp_filter as it was before the tunnel loosened it (where it is still 2). */
function rpFilterSteps(root: string, runDir: string | undefined): CleanupStep[] {
  return new RpFilterRecord(rpFilterRecordPath(root, runDir))
    .restores()
    .map((r) => ({ what: `rp_filter of ${r.ifname}: ${RP_FILTER_LOOSE} -> ${r.value}`, run: r.run }));
}

/** The maps, programs and directories under the root, and the root itself once that
 *  leaves it empty (the hooks' pins go with the hooks, before). */
function pinSteps(root: string): CleanupStep[] {
  if (!fs.existsSync(root)) return [];
  const { files, dirs } = loaderPins(root);
  const steps = [
    ...files.map((f) => ({ what: `pin ${f}`, run: () => fs.unlinkSync(f) })),
    ...dirs.map((d) => ({ what: `directory ${d}`, run: () => fs.rmdirSync(d) })),
  ];
  const gone = new Set([...files, ...dirs]);
  if (fs.readdirSync(root).every((f) => gone.has(path.join(root, f))))
    steps.push({ what: `directory ${root}`, run: () => fs.rmdirSync(root) });
  return steps;
}

/** The agent's files in its run directory, and its sockets that no one serves. */
async function runDirSteps(root: string, runDir: string | undefined, sockets: string[]): Promise<CleanupStep[]> {
  const files = [namesFilePath, lastGoodFilePath, sandboxesFilePath, rpFilterRecordPath]
    .map((f) => f(root, runDir))
    .filter((f) => fs.existsSync(f));
  const live: string[] = [];
  for (const s of [agentSocketPath(root, runDir), ...sockets]) {
    const st = fs.lstatSync(s, { throwIfNoEntry: false });
    if (st?.isSocket() && !(await canConnect(s, 2000))) live.push(s);
  }
  const gone = [...files, ...live];
  const steps = gone.map((f) => ({ what: `file ${f}`, run: () => fs.unlinkSync(f) }));
  const dir = path.dirname(namesFilePath(root, runDir));
  if (fs.existsSync(dir) && fs.readdirSync(dir).every((f) => gone.includes(path.join(dir, f))))
    steps.push({ what: `directory ${dir}`, run: () => fs.rmdirSync(dir) });
  return steps;
}

/** What cleanup would remove, in the order it removes it: the hooks first (enforcement
 *  ends), then the tunnel's routing and rp_filter, the pins and the agent's files. The caller holds the
 *  bpffs root's instance lock (no agent changes any of it meanwhile). */
export async function planCleanup(addon: NativeAddon, opts: CleanupOptions): Promise<CleanupStep[]> {
  return [
    ...hookSteps(addon, opts.bpffsRoot),
    ...routingSteps(addon, opts.tunnelTable),
    ...rpFilterSteps(opts.bpffsRoot, opts.runDir),
    ...pinSteps(opts.bpffsRoot),
    ...(await runDirSteps(opts.bpffsRoot, opts.runDir, opts.sockets ?? [])),
  ];
}

/** Runs every step; returns the ones that failed with why. */
export function runCleanup(steps: CleanupStep[], onDone: (step: CleanupStep) => void): string[] {
  const failed: string[] = [];
  for (const step of steps) {
    try {
      step.run();
      onDone(step);
    } catch (e) {
      failed.push(`${step.what}: ${(e as Error).message}`);
    }
  }
  return failed;
}
