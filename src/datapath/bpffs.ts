// The bpffs root's directory, created without Node's recursive mkdir: on sysfs (what
// `ip netns exec` leaves at /sys/fs/bpf, or a host without bpffs) mkdir answers ENOENT
// under an existing parent, which Node 20's recursive mkdir takes for a missing parent:
// it re-creates the parent (EEXIST) and retries forever inside one synchronous call, so
// the event loop, /healthz and the SIGTERM handler never run again.
import fs from 'node:fs';
import path from 'node:path';

export const BPF_FS_MAGIC = 0xcafe4a11;

const FS_NAMES: Record<number, string> = {
  0x62656572: 'sysfs',
  0x01021994: 'tmpfs',
  0xef53: 'ext4',
  0x794c7630: 'overlayfs',
  0x58465342: 'xfs',
};

function fsType(dir: string): number {
  return Number(fs.statfsSync(dir).type);
}

function describeFs(type: number): string {
  return FS_NAMES[type] ?? `filesystem type 0x${type.toString(16)}`;
}

/** The nearest existing ancestor of dir (dir itself when it exists). */
function existingAncestor(dir: string): string {
  let d = dir;
  while (!fs.existsSync(d)) d = path.dirname(d);
  return d;
}

/** mkdir of each missing component below `from`, one level at a time: errors surface. */
function mkdirBelow(from: string, dir: string): void {
  const missing = path.relative(from, dir).split(path.sep).filter(Boolean);
  let d = from;
  for (const part of missing) {
    d = path.join(d, part);
    try {
      fs.mkdirSync(d, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST')
        throw new Error(`create bpffs directory ${d}: ${(e as Error).message}`);
    }
  }
}

export interface EnsureBpffsOptions {
  /** Mounts a bpffs at the directory (the native mountBpffs); absent: never mount. */
  mount?: (dir: string) => void;
}

/**
 * Creates `root` inside a bpffs. When the root's nearest existing ancestor is no bpffs,
 * a bpffs is mounted at the root's parent if `mount` is given, the parent is an empty
 * directory (nothing gets hidden) and the mount is permitted (as Cilium mounts
 * /sys/fs/bpf); otherwise this throws naming what to mount. Returns the directory
 * mounted, if any.
 */
export function ensureBpffsRoot(root: string, opts: EnsureBpffsOptions = {}): { mounted?: string } {
  const dir = path.resolve(root);
  const parent = path.dirname(dir);
  const found = existingAncestor(dir);
  const type = fsType(found);
  if (type === BPF_FS_MAGIC) {
    mkdirBelow(found, dir);
    return {};
  }
  const what = `bpffs root ${dir}: ${found} is ${describeFs(type)}, not a bpffs`;
  const howTo = `mount one first: mount -t bpf bpf ${parent}`;
  if (found !== parent) throw new Error(`${what}: ${found === dir ? howTo : `create ${parent} and ${howTo}`}`);
  if (!opts.mount) throw new Error(`${what}: ${howTo}`);
  if (fs.readdirSync(parent).length > 0)
    throw new Error(`${what}, and ${parent} is not empty (no mount over files): ${howTo}`);
  try {
    opts.mount(parent);
  } catch (e) {
    throw new Error(`${what}, and mounting one failed (${(e as Error).message}): ${howTo}`);
  }
  mkdirBelow(parent, dir);
  return { mounted: parent };
}
