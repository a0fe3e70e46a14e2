// Loads bpf/.output/netfence.bpf.o with its maps pinned under the bpffs root, adopting
// pinned state of the same layout. The programs are pinned too, under
// <root>/progs/<object hash>: a restart with the same object adopts them and skips the
// load (the verifier costs seconds); a changed object is loaded and the caller moves
// the hooks to it (switchPrograms) before pruneProgramPins() drops the old programs.
// An incompatible layout (a pinned map libbpf cannot reuse, or nf_config.layout_version
// differs) loads fresh maps under <root>/staging; the caller fills them, and
// finishMigration() moves every tc hook to the new programs and only then replaces the
// old pins, so packets always meet an enforcing program. Map capacities (NetfenceConfig
// `capacity`) are set at load; pins of other capacities or flags but the same layout
// version migrate the same way, and their runtime state (conntrack, counters) is copied
// into the new maps right before the hooks switch.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { defaultCapacity } from '../model/config';
import type { Capacity } from '../model/types';
import { ensureBpffsRoot } from './bpffs';
import { NF_LAYOUT_VERSION } from '../wire/abi';
import { encodeU32 } from '../wire/bytes';
import { decodeConfig, encodeConfig, type Config } from '../wire/config';
import { POLICY_MAPS } from '../wire/maps';
import { addonPath } from './native';
import type { BpfObjectHandle, MapInfo, NativeAddon, ProgInfo } from './native-api';

export const DEFAULT_BPFFS_ROOT = '/sys/fs/bpf/netfence';
export const DEFAULT_OBJECT = path.resolve(path.dirname(addonPath), '../../../bpf/.output/netfence.bpf.o');
const STAGING = 'staging';
const LINKS = 'links';
const FILTERS = 'filters';
const PROGS = 'progs';
/** netfence's tc programs (their names tell its filters from other owners'). */
export const PROGRAMS = ['nf_tc_ingress', 'nf_tc_egress'] as const;
/** Every map the agent and its programs use: adoption needs all of them pinned. A map
 *  that pins of an older object lack (e.g. nf_ep_counters) makes the load take the normal
 *  path: libbpf reuses the compatible pins and creates and pins the new map. */
const RUNTIME_MAPS = [
  'nf_config',
  'nf_events',
  'nf_ct',
  'nf_rule_stats',
  'nf_reason_stats',
  'nf_ratelimit',
  'nf_ep_counters',
  'nf_stack_arrivals',
  ...POLICY_MAPS,
];
/** What the agent cannot recompute from a snapshot: carried over by a migration of the same
 *  layout (the policy maps are filled by the first reconcile, the rest starts empty). */
const CARRIED_MAPS = ['nf_ct', 'nf_stack_arrivals', 'nf_rule_stats', 'nf_ep_counters'];
/** Pins of maps no object has any more (nf_ep_stats: the counters before nf_ep_counters).
 *  Removed at load: programs still attached keep theirs open until they are replaced. */
const OBSOLETE_PINS = ['nf_ep_stats'];

/** Map, the capacity field that sizes it, and the factor (nf_local_addrs: an IPv4 and an IPv6
 *  address per endpoint). `fits`: its pinned content must fit a new size (the policy maps);
 *  the LRU conntrack and the counters instead lose what does not fit. */
const CAPACITY_MAPS: readonly { map: string; field: keyof Capacity; factor: number; fits: boolean }[] = [
  { map: 'nf_endpoints', field: 'endpoints', factor: 1, fits: true },
  { map: 'nf_local_addrs', field: 'endpoints', factor: 2, fits: true },
  { map: 'nf_ident_exact', field: 'identities', factor: 1, fits: true },
  { map: 'nf_ident_lpm', field: 'identities', factor: 1, fits: true },
  { map: 'nf_peer_ident', field: 'peerIdentities', factor: 1, fits: true },
  { map: 'nf_peer_cidr', field: 'peerCidrs', factor: 1, fits: true },
  { map: 'nf_ports', field: 'ports', factor: 1, fits: true },
  { map: 'nf_rules', field: 'rules', factor: 1, fits: true },
  { map: 'nf_rule_stats', field: 'rules', factor: 1, fits: false },
  { map: 'nf_ct', field: 'conntrack', factor: 1, fits: false },
];

/** max_entries of each map a capacity sizes (the others keep the object's own). */
export function capacityMaxEntries(c: Capacity): Record<string, number> {
  return Object.fromEntries(CAPACITY_MAPS.map(({ map, field, factor }) => [map, factor * c[field]]));
}

/** Refuses a capacity below what the pinned policy maps hold: migrating would drop enforced
 *  entries, so the pinned state stays (enforcing) until the capacity is raised. */
function checkPinnedFit(addon: NativeAddon, root: string, c: Capacity): void {
  for (const { map, field, factor, fits } of CAPACITY_MAPS) {
    const pin = path.join(root, map);
    if (!fits || !fs.existsSync(pin)) continue;
    const info = addon.mapOpenPinned(pin);
    try {
      const held = info.maxEntries > factor * c[field] ? addon.mapKeys(info.fd).length : 0;
      if (held > factor * c[field]) {
        throw new Error(
          `load datapath: capacity.${field} ${c[field]} leaves ${map} room for ${factor * c[field]} entries, its pins hold ${held}: raise it (the pinned state stays enforced)`,
        );
      }
    } finally {
      addon.closeFd(info.fd);
    }
  }
}

export interface Datapath {
  root: string;
  maps: Map<string, MapInfo>;
  ingress: ProgInfo; // nf_tc_ingress
  egress: ProgInfo; // nf_tc_egress
  /** sha256 prefix of the object file the programs were loaded from. */
  objectHash: string;
  /** true: maps and programs were adopted from the pins, nothing was loaded. */
  adopted: boolean;
  /** Set while the maps live under the staging dir (incompatible pinned maps); `carry`:
   *  the pins have this layout version, so their CARRIED_MAPS are copied at the switch. */
  migration?: { staging: string; reason: string; carry: boolean };
  close(): void;
}

export interface LoadOptions {
  bpffsRoot: string;
  objectPath?: string;
  /** Default: defaultCapacity(). */
  capacity?: Capacity;
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

export function objectHash(objectPath: string): string {
  try {
    return createHash('sha256').update(fs.readFileSync(objectPath)).digest('hex').slice(0, 16);
  } catch (e) {
    throw new Error(`load datapath: read object ${objectPath}: ${(e as Error).message}`);
  }
}

function wrap(root: string, obj: BpfObjectHandle, hash: string, migration?: Datapath['migration']): Datapath {
  const maps = new Map(obj.maps().map((m) => [m.name, m]));
  const progs = new Map(obj.programs().map((p) => [p.name, p]));
  const prog = (name: string): ProgInfo => {
    const p = progs.get(name);
    if (!p) throw new Error(`load datapath: program ${name} missing from the object`);
    return p;
  };
  return {
    root,
    maps,
    ingress: prog('nf_tc_ingress'),
    egress: prog('nf_tc_egress'),
    objectHash: hash,
    adopted: false,
    migration,
    close: () => obj.close(),
  };
}

function progsDir(root: string, hash: string): string {
  return path.join(root, PROGS, hash);
}

/** Maps and programs from the pins, when the programs of this very object are pinned and
 *  the maps have the wanted max_entries. */
function adopt(
  addon: NativeAddon,
  root: string,
  hash: string,
  maxEntries: Record<string, number>,
): Datapath | undefined {
  const dir = progsDir(root, hash);
  const pinned = new Set(pinFiles(root));
  if (!PROGRAMS.every((p) => fs.existsSync(path.join(dir, p))) || !RUNTIME_MAPS.every((m) => pinned.has(m)))
    return undefined;
  const fds: number[] = [];
  const open = (file: string): MapInfo => {
    const info = addon.mapOpenPinned(file);
    fds.push(info.fd);
    return info;
  };
  try {
    const maps = new Map([...pinned].map((name) => [name, { ...open(path.join(root, name)), name }]));
    if (Object.entries(maxEntries).some(([name, max]) => maps.get(name)?.maxEntries !== max)) {
      fds.forEach((fd) => addon.closeFd(fd));
      return undefined; // resized: the load below finds which map and migrates
    }
    const [ingress, egress] = PROGRAMS.map((name): ProgInfo => {
      const { fd, type, id } = open(path.join(dir, name));
      return { name, fd, type, id };
    });
    return {
      root,
      maps,
      ingress,
      egress,
      objectHash: hash,
      adopted: true,
      close: () => fds.forEach((fd) => addon.closeFd(fd)),
    };
  } catch (e) {
    fds.forEach((fd) => addon.closeFd(fd));
    throw new Error(`adopt pinned datapath in ${root}: ${(e as Error).message}`);
  }
}

/** Pin the loaded programs under progs/<hash> (replacing pins of a half-done earlier run). */
function pinPrograms(addon: NativeAddon, dp: Datapath): void {
  const dir = progsDir(dp.root, dp.objectHash);
  fs.mkdirSync(dir, { recursive: true });
  for (const p of [dp.ingress, dp.egress]) {
    const file = path.join(dir, p.name);
    if (fs.existsSync(file)) addon.unpin(file);
    addon.pin(p.fd, file);
  }
}

/** Drop pinned programs of other objects (call once every hook runs this datapath's programs). */
export function pruneProgramPins(dp: Datapath): void {
  const top = path.join(dp.root, PROGS);
  for (const hash of fs.existsSync(top) ? fs.readdirSync(top) : []) {
    if (hash === dp.objectHash) continue;
    removePins(path.join(top, hash));
    fs.rmdirSync(path.join(top, hash));
  }
}

export function loadDatapath(addon: NativeAddon, opts: LoadOptions): Datapath {
  const root = opts.bpffsRoot;
  const objectPath = opts.objectPath ?? DEFAULT_OBJECT;
  const hash = objectHash(objectPath);
  const staging = path.join(root, STAGING);
  const capacity = opts.capacity ?? defaultCapacity();
  const maxEntries = capacityMaxEntries(capacity);
  // The root is checked to be inside a bpffs first: Node's recursive mkdir spins forever
  // on sysfs (datapath/bpffs). Mounting one is the agent's decision, made before this.
  ensureBpffsRoot(root);
  fs.mkdirSync(path.join(root, LINKS), { recursive: true });
  fs.mkdirSync(path.join(root, FILTERS), { recursive: true });

  // A migration that stopped after the old pins were removed: the staged maps are the live ones.
  if (fs.existsSync(path.join(staging, 'nf_config')) && !fs.existsSync(path.join(root, 'nf_config')))
    movePins(staging, root);
  else if (fs.existsSync(staging)) {
    removePins(staging);
    fs.rmdirSync(staging);
  }

  for (const name of OBSOLETE_PINS) fs.rmSync(path.join(root, name), { force: true });
  let reason: string | undefined;
  const version = pinnedLayoutVersion(addon, root);
  if (version !== undefined && version !== 0 && version !== NF_LAYOUT_VERSION) {
    reason = `pinned layout version ${version}, this agent has ${NF_LAYOUT_VERSION}`;
  } else {
    const adopted = version === NF_LAYOUT_VERSION ? adopt(addon, root, hash, maxEntries) : undefined;
    if (adopted) return adopted;
    try {
      const dp = wrap(root, addon.openObject(objectPath, { pinRoot: root, maxEntries }), hash);
      stampLayout(addon, dp);
      pinPrograms(addon, dp);
      return dp;
    } catch (e) {
      const map = (e as { map?: unknown }).map;
      if (typeof map !== 'string') throw e;
      reason = `pinned map ${map} is incompatible: ${(e as Error).message}`;
    }
  }
  const carry = version === NF_LAYOUT_VERSION;
  if (carry) checkPinnedFit(addon, root, capacity);
  fs.mkdirSync(staging, { recursive: true });
  const dp = wrap(root, addon.openObject(objectPath, { pinRoot: staging, maxEntries }), hash, {
    staging,
    reason,
    carry,
  });
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

/** Copies a pinned map's entries into `to` when their shape matches; a smaller `to` keeps
 *  what fits (for an LRU, as if the rest had aged out). Returns the entries copied. */
function copyPinned(addon: NativeAddon, pin: string, to: MapInfo): number {
  if (!fs.existsSync(pin)) return 0;
  const from = addon.mapOpenPinned(pin);
  let copied = 0;
  try {
    if (from.type !== to.type || from.keySize !== to.keySize || from.valueSize !== to.valueSize) return 0;
    for (const key of addon.mapKeys(from.fd)) {
      const value = addon.mapLookup(from.fd, key);
      if (value === null) continue; // deleted meanwhile
      addon.mapUpdate(to.fd, key, value);
      copied++;
    }
  } catch (e) {
    if ((e as { code?: string }).code !== 'E2BIG') throw e; // full: the new map holds what fits
  } finally {
    addon.closeFd(from.fd);
  }
  return copied;
}

/** After the staged maps are filled: carry the runtime state over (same layout only), switch
 *  every hook (via `switchHooks`), then replace the old pins. Returns the entries carried. */
export function finishMigration(addon: NativeAddon, dp: Datapath, switchHooks: () => void): Record<string, number> {
  const carried: Record<string, number> = {};
  if (!dp.migration) return carried;
  // Just before the switch: flows the old programs track until then are not lost.
  if (dp.migration.carry)
    for (const name of CARRIED_MAPS) carried[name] = copyPinned(addon, path.join(dp.root, name), dp.maps.get(name)!);
  switchHooks();
  removePins(dp.root);
  movePins(dp.migration.staging, dp.root);
  dp.migration = undefined;
  pinPrograms(addon, dp);
  pruneProgramPins(dp);
  return carried;
}

/** The pins the loader makes under the root (maps, staged maps, programs; not the hooks'
 *  links and markers), then its directories, innermost first: what an uninstall removes.
 *  Top-level and staged files count only as netfence's maps (nf_*): a root set to a shared
 *  directory loses nothing else. */
export function loaderPins(root: string): { files: string[]; dirs: string[] } {
  const maps = (dir: string): string[] =>
    pinFiles(dir)
      .filter((f) => f.startsWith('nf_'))
      .map((f) => path.join(dir, f));
  const progs = path.join(root, PROGS);
  const hashes = fs.existsSync(progs) ? fs.readdirSync(progs).map((h) => path.join(progs, h)) : [];
  const staging = path.join(root, STAGING);
  return {
    files: [...maps(root), ...maps(staging), ...hashes.flatMap((d) => pinFiles(d).map((f) => path.join(d, f)))],
    dirs: [...hashes, progs, staging, linksDir(root), filtersDir(root)].filter((d) => fs.existsSync(d)),
  };
}

export function linksDir(root: string): string {
  return path.join(root, LINKS);
}

/** Where the markers of netfence's clsact filters are pinned (datapath/attach). */
export function filtersDir(root: string): string {
  return path.join(root, FILTERS);
}
