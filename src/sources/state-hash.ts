// Content hash of a state directory (the YAML the directory source reads), reported
// with the applied generation so tools can wait until an agent enforces what they wrote.
import { readStateDir } from './state-files';

export async function stateDirHash(dir: string): Promise<string> {
  return (await readStateDir(dir)).version;
}
