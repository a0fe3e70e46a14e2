// Loads the native addon (native/, built by node-gyp) typed by its contract.
import path from 'node:path';
import type { NativeAddon } from './native-api';

// The package root: src/datapath/ in the sources, dist/src/datapath/ once compiled.
function packageRoot(): string {
  const here = __dirname;
  const up = path.basename(path.resolve(here, '../..')) === 'dist' ? '../../..' : '../..';
  return path.resolve(here, up);
}

export const addonPath = path.join(packageRoot(), 'native', 'build', 'Release', 'netfence_native.node');

let loaded: NativeAddon | undefined;

// Loaded on first use, so commands that never touch the kernel (compile, trace --engine
// model, lab down) work without a built addon.
export const native: NativeAddon = new Proxy({} as NativeAddon, {
  get(_target, prop: string | symbol): unknown {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a .node addon loads only through require(), here lazily
    loaded ??= require(addonPath) as NativeAddon;
    return Reflect.get(loaded, prop);
  },
});
