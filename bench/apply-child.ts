// Child process of the apply benchmark (its peak RSS is the apply's):
//   node dist/bench/apply-child.js --dir DIR --node NAME
// One agent start's worth of work from files to map entries, as `netfence agent --state` does
// it: read the settings (NetfenceConfig), hash and load the state directory (parse +
// snapshot; the files parsed for the settings are not parsed again), compile for the node,
// and write the entries into the maps of the real netfence object loaded in the kernel
// (unpinned, freed at exit). Then one file is edited and the directory source's steps run
// again with its parse cache.
// Prints one JSON line (ApplyChildResult).
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Compiler } from '../src/compile';
import { ParseCache, loadStateDirAsync, loadStateDirConfigAsync } from '../src/sources/directory';
import { stateDirHash } from '../src/sources/state-hash';
import { localEndpoints } from './cluster';
import { kernelReconciler } from './kernel-maps';

export interface ApplyChildResult {
  policies: number;
  errors: number;
  loadMs: number;
  compileMs: number;
  writeMs: number;
  rssMb: number;
  mapEntries: Record<string, number>;
  /** One file edited, then load (cache) + compile + write. */
  reloadMs: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { dir: { type: 'string' }, node: { type: 'string', default: 'node-0' } } });
  const dir = values.dir!;
  const node = values.node!;
  const { reconciler, close } = kernelReconciler();
  const compiler = new Compiler();
  const cache = new ParseCache();
  const apply = async (
    start: boolean,
  ): Promise<{
    load: number;
    compile: number;
    write: number;
    policies: number;
    errors: number;
    entries: Record<string, number>;
  }> => {
    const t0 = performance.now();
    if (start) await loadStateDirConfigAsync(dir, cache);
    await stateDirHash(dir);
    const snapshot = await loadStateDirAsync(dir, cache);
    const t1 = performance.now();
    const out = compiler.compile(snapshot, node, localEndpoints(snapshot, node));
    const t2 = performance.now();
    const r = reconciler.apply(out.maps, out.endpoints);
    const t3 = performance.now();
    if (!r.ok || r.failed.length)
      throw new Error(`apply to kernel maps: ${r.error ?? r.failed.map((f) => f.error).join('; ')}`);
    const entries = Object.fromEntries(Object.entries(out.maps).map(([m, c]) => [m, c.size]));
    return {
      load: t1 - t0,
      compile: t2 - t1,
      write: t3 - t2,
      policies: snapshot.policies.length,
      errors: snapshot.errors.length + out.errors.length,
      entries,
    };
  };
  const first = await apply(true);
  const rssMb = process.resourceUsage().maxRSS / 1024;

  const file = fs.readdirSync(dir).filter((f) => f.startsWith('ns-'))[0];
  fs.appendFileSync(path.join(dir, file), '# edited\n');
  const t = performance.now();
  await apply(false);
  const reloadMs = performance.now() - t;
  close();

  const result: ApplyChildResult = {
    policies: first.policies,
    errors: first.errors,
    loadMs: first.load,
    compileMs: first.compile,
    writeMs: first.write,
    rssMb,
    mapEntries: first.entries,
    reloadMs,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((e: Error) => {
  process.stderr.write(`apply child: ${e.message}\n`);
  process.exit(1);
});
