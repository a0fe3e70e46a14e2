// One agent per bpffs root: an exclusive flock(2) on the root directory itself, held
// for the process life (the kernel releases it when the process dies, also on kill -9).
// Locking the bpffs directory, not a file in /run, also excludes an agent in another
// mount namespace that shares the bpffs (a DaemonSet pod and a host process).
import fs from 'node:fs';
import type { NativeAddon, NativeError } from '../datapath/native-api';

/** Pid of the process holding a flock on the file (from /proc/locks), if listed. */
export function flockHolder(file: string, locks = '/proc/locks'): number | undefined {
  const st = fs.statSync(file);
  // /proc/locks names the inode as "maj:min:ino", major and minor in hex.
  const major = Number((BigInt(st.dev) >> 8n) & 0xfffn);
  const minor = Number((BigInt(st.dev) & 0xffn) | ((BigInt(st.dev) >> 12n) & 0xfff00n));
  const id = `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}:${st.ino}`;
  for (const line of fs.readFileSync(locks, 'utf8').split('\n')) {
    // "1: FLOCK  ADVISORY  WRITE 1234 00:28:61544 0 EOF" ("->" marks a waiting lock)
    const f = line.trim().split(/\s+/);
    if (f[1] === 'FLOCK' && f[5] === id) return Number(f[4]);
  }
  return undefined;
}

/** Takes the root's lock or throws naming the agent that holds it. Returns the lock's fd. */
export function lockBpffsRoot(addon: NativeAddon, root: string): number {
  try {
    return addon.flockExclusive(root);
  } catch (e) {
    if ((e as NativeError).code !== 'EAGAIN') throw e;
    const pid = flockHolder(root);
    throw new Error(
      `lock bpffs root ${root}: another netfence agent (pid ${pid ?? 'unknown'}) enforces from it; one agent per bpffs root`,
    );
  }
}
