// A CNI_PATH directory holding netfence-cni as the installer lays it out: the compiled
// executable, and its fallback (the bundle and node, linked rather than copied).
import path from 'node:path';
import { installBinary } from '../../src/cni/install';

const DIST = path.resolve(__dirname, '../..');

export function pluginBinDir(dir: string): string {
  installBinary(dir, DIST, process.execPath, 'link');
  return dir;
}
