// Shared by the commands that read a state directory: load it, print its validation
// errors on stderr (bad objects are skipped, the rest still works), pick the node.
import { formatValidationError } from '../model/snapshot';
import type { Snapshot } from '../model/types';
import { loadStateDir } from '../sources/directory';

export function loadState(dir: string): Snapshot {
  const s = loadStateDir(dir);
  for (const e of s.errors) process.stderr.write(`warning: ${formatValidationError(e)}\n`);
  for (const w of s.warnings) process.stderr.write(`warning: ${w}\n`);
  return s;
}

/** --node, else $NODE_NAME, else the first Node of the state. */
export function pickNode(s: Snapshot, flag: string | undefined): string {
  const name = flag ?? process.env.NODE_NAME ?? s.nodes[0]?.name;
  if (!name) throw new Error('pick node: the state has no Node (use --node or NODE_NAME)');
  return name;
}
