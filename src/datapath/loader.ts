// Loads bpf/.output/netfence.bpf.o with its maps pinned under the bpffs root, adopting
// pinned state of the same layout. An incompatible layout (a pinned map libbpf cannot
// reuse, or nf_config.layout_version differs) loads fresh maps under <root>/staging;
// the caller fills them, and finishMigration() moves every tc hook to the new programs
// and only then replaces the old pins, so packets always meet an enforcing program.
import fs from 'node:fs';
import path from 'node:path';
import { NF_LAYOUT_VERSION, decodeConfig, encodeConfig, encodeU32, type Config } from './codecs';
import { addonPath } from './native';
import type { BpfObjectHandle, MapInfo, NativeAddon, ProgInfo } from './native-api';

export const DEFAULT_BPFFS_ROOT = '/sys/fs/bpf/netfence';
export const DEFAULT_OBJECT = path.resolve(path.dirname(addonPath), '../../../bpf/.output/netfence.bpf.o');
const STAGING = 'staging';
const LINKS = 'links';

export interface Datapath {
  root: string;
  obj: BpfObjectHandle;
  maps: Map<string, MapInfo>;
  ingress: ProgInfo; // nf_tc_ingress
  egress: ProgInfo; // nf_tc_egress
  /** Set while the maps live under the staging dir (incompatible pinned layout). */
  migration?: { staging: string; reason: string };
  close(): void;
}

export interface LoadOptions {
  bpffsRoot: string;
  objectPath?: string;
}

/** The pin files of maps (not the links/ and staging/ dirs). */
function pinFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((d) => !d.isDirectory())
    .map((d) => d.name);
}

function removePins(dir: string): void {
  for (const f of pinFiles(dir)) fs.unlinkSync(path.join(dir, f));
}

function movePins(from: string, to: string): void {
  for (const f of pinFiles(from)) fs.renameSync(path.join(from, f), path.join(to, f));
  fs.rmdirSync(from);
}

function pinnedLayoutVersion(addon: NativeAddon, root: string): number | undefined {
  const pin = path.join(root, 'nf_config');
  if (!fs.existsSync(pin)) return undefined;
  const info = addon.mapOpenPinned(pin);
  try {
    const v = addon.mapLookup(info.fd, encodeU32(0));
    return v ? decodeConfig(v).layoutVersion : 0;
  } finally {
    addon.closeFd(info.fd);
  }
}

function wrap(addon: NativeAddon, root: string, obj: BpfObjectHandle, migration?: Datapath['migration']): Datapath {
  const maps = new Map(obj.maps().map((m) => [m.name, m]));
  const progs = new Map(obj.programs().map((p) => [p.name, p]));
  const prog = (name: string): ProgInfo => {
    const p = progs.get(name);
    if (!p) throw new Error(`load datapath: program ${name} missing from the object`);
    return p;
  };
  return { root, obj, maps, ingress: prog('nf_tc_ingress'), egress: prog('nf_tc_egress'), migration, close: () => obj.close() };
}

export function loadDatapath(addon: NativeAddon, opts: LoadOptions): Datapath {
  const root = opts.bpffsRoot;
  const objectPath = opts.objectPath ?? DEFAULT_OBJECT;
  const staging = path.join(root, STAGING);
  fs.mkdirSync(path.join(root, LINKS), { recursive: true });

  // A migration that stopped after the old pins were removed: the staged maps are the live ones.
  if (fs.existsSync(path.join(staging, 'nf_config')) && !fs.existsSync(path.join(root, 'nf_config'))) movePins(staging, root);
  else if (fs.existsSync(staging)) {
    removePins(staging);
    fs.rmdirSync(staging);
  }

  let reason: string | undefined;
  const version = pinnedLayoutVersion(addon, root);
  if (version !== undefined && version !== 0 && version !== NF_LAYOUT_VERSION) {
    reason = `pinned layout version ${version}, this agent has ${NF_LAYOUT_VERSION}`;
  } else {
    try {
      const dp = wrap(addon, root, addon.openObject(objectPath, { pinRoot: root }));
      stampLayout(addon, dp);
      return dp;
    } catch (e) {
      const map = (e as { map?: unknown }).map;
      if (typeof map !== 'string') throw e;
      reason = `pinned map ${map} is incompatible: ${(e as Error).message}`;
    }
  }
  fs.mkdirSync(staging, { recursive: true });
  const dp = wrap(addon, root, addon.openObject(objectPath, { pinRoot: staging }), { staging, reason });
  stampLayout(addon, dp);
  return dp;
}

export function readConfig(addon: NativeAddon, dp: Datapath): Config {
  const v = addon.mapLookup(mapFd(dp, 'nf_config'), encodeU32(0));
  return v
    ? decodeConfig(v)
    : { layoutVersion: 0, flags: 0, tunnelMark: 0, tunnelMarkMask: 0, uplinkIfindex: 0, eventsPerSec: 0 };
}

/** Read-modify-write of the single nf_config element. */
export function updateConfig(addon: NativeAddon, dp: Datapath, patch: Partial<Config>): Config {
  const next = { ...readConfig(addon, dp), ...patch, layoutVersion: NF_LAYOUT_VERSION };
  addon.mapUpdate(mapFd(dp, 'nf_config'), encodeU32(0), encodeConfig(next));
  return next;
}

function stampLayout(addon: NativeAddon, dp: Datapath): void {
  if (readConfig(addon, dp).layoutVersion !== NF_LAYOUT_VERSION) updateConfig(addon, dp, {});
}

export function mapFd(dp: Datapath, name: string): number {
  const m = dp.maps.get(name);
  if (!m) throw new Error(`open map ${name}: not in the loaded object`);
  return m.fd;
}

/** After the staged maps are filled: switch every hook (via `switchHooks`), then replace the old pins. */
export function finishMigration(dp: Datapath, switchHooks: () => void): void {
  if (!dp.migration) return;
  switchHooks();
  removePins(dp.root);
  movePins(dp.migration.staging, dp.root);
  dp.migration = undefined;
}

export function linksDir(root: string): string {
  return path.join(root, LINKS);
}
