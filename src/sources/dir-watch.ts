// Change notification for a state directory tree: one plain (non-recursive) fs.watch per
// directory, re-synced on every event so new and removed subdirectories are followed.
// Node 20's recursive fs.watch on Linux is not used: it watches files by inode and misses
// later changes to a file replaced by rename (how atomic writers update files).
import fs from 'node:fs';
import path from 'node:path';

function directories(root: string): string[] {
  const out = [root];
  for (let i = 0; i < out.length; i++) {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(out[i], { withFileTypes: true });
    } catch {
      continue; // removed meanwhile: its watcher goes at the next sync
    }
    for (const e of entries) if (e.isDirectory()) out.push(path.join(out[i], e.name));
  }
  return out;
}

export function watchTree(root: string, onChange: () => void): { close(): void } {
  const watchers = new Map<string, fs.FSWatcher>();
  const drop = (dir: string): void => {
    watchers.get(dir)?.close();
    watchers.delete(dir);
  };
  const sync = (): void => {
    const dirs = new Set(directories(root));
    for (const dir of watchers.keys()) if (!dirs.has(dir)) drop(dir);
    for (const dir of dirs) {
      if (watchers.has(dir)) continue;
      try {
        const w = fs.watch(dir, () => {
          sync();
          onChange();
        });
        w.on('error', () => drop(dir));
        watchers.set(dir, w);
      } catch {
        // gone between the listing and the watch
      }
    }
  };
  if (!fs.existsSync(root)) throw new Error(`watch state directory ${root}: does not exist`);
  sync();
  return { close: () => [...watchers.keys()].forEach(drop) };
}
