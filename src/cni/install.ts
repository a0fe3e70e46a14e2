#!/usr/bin/env node
// The DaemonSet's init container: installs netfence-cni on the host (the compiled
// executable, and beside it its fallback: the plugin bundled into one file and a node
// binary, since hosts need not have node) and appends it to the primary CNI network's
// plugin chain. Idempotent: reruns change nothing.
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { DEFAULT_AGENT_SOCKET } from './protocol';

/** netfence-cni as one bundled file (package.json build:ts, esbuild): when the executable
 *  falls back to it, node reads and compiles one small file, not its module closure. */
export const BUNDLE_FILE = 'netfence-cni.js';

/** The plugin type, and its executable's name (cni/netfence-cni.c, built into dist/). */
export const PLUGIN_TYPE = 'netfence-cni';

/** Beside the executable, where it finds `node` and the bundle (cni/netfence-cni.c run_bundle). */
export const FALLBACK_DIR = 'netfence';

export interface ChainEntry {
  type: string;
  agentSocket: string;
  failOpen: boolean;
  [k: string]: unknown;
}

interface ConfList {
  cniVersion: string;
  name: string;
  plugins: Array<{ type: string; [k: string]: unknown }>;
  [k: string]: unknown;
}

function writeAtomic(file: string, data: string | Buffer, mode: number): void {
  const tmp = `${file}.netfence-tmp`;
  fs.writeFileSync(tmp, data);
  fs.chmodSync(tmp, mode); // whatever the umask: the runtime must be able to run it
  fs.renameSync(tmp, file);
}

/** Install netfence-cni into binDir: the executable (binDir/netfence-cni) and its fallback,
 *  the bundle and node under binDir/netfence. Node is copied, or linked where the host's node
 *  stays (a test or bench bin dir). */
export function installBinary(
  binDir: string,
  distDir: string,
  nodeBinary = process.execPath,
  node: 'copy' | 'link' = 'copy',
): void {
  const home = path.join(binDir, FALLBACK_DIR);
  fs.mkdirSync(home, { recursive: true });
  writeAtomic(path.join(home, BUNDLE_FILE), fs.readFileSync(path.join(distDir, BUNDLE_FILE)), 0o644);
  if (node === 'copy') {
    writeAtomic(path.join(home, 'node'), fs.readFileSync(nodeBinary), 0o755);
  } else {
    fs.rmSync(path.join(home, 'node'), { force: true });
    fs.symlinkSync(nodeBinary, path.join(home, 'node'));
  }
  // Last: the runtime may run the executable as soon as it exists, and then needs its fallback.
  writeAtomic(path.join(binDir, PLUGIN_TYPE), fs.readFileSync(path.join(distDir, PLUGIN_TYPE)), 0o755);
}

/** The primary network: the first config file in lexical order, as the runtime picks it. */
export function primaryConfig(confDir: string): string | undefined {
  return fs
    .readdirSync(confDir)
    .filter((n) => /\.(conflist|conf|json)$/.test(n))
    .sort()
    .map((n) => path.join(confDir, n))
    .find((p) => fs.statSync(p).isFile());
}

/** Append netfence-cni to the chain of `file` (a .conf becomes a .conflist). Returns the file written. */
export function addToChain(file: string, entry: ChainEntry): string {
  let conf: Record<string, unknown>;
  try {
    conf = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`read CNI config ${file}: ${(err as Error).message}`);
  }
  let list: ConfList;
  let out = file;
  if (Array.isArray(conf.plugins)) {
    list = conf as ConfList;
  } else {
    if (typeof conf.type !== 'string') throw new Error(`read CNI config ${file}: neither plugins nor type`);
    const { cniVersion, name, ...plugin } = conf;
    list = {
      cniVersion: String(cniVersion ?? '1.0.0'),
      name: String(name ?? 'k8s-pod-network'),
      plugins: [plugin as ConfList['plugins'][number]],
    };
    out = file.replace(/\.(conf|json)$/, '.conflist');
  }
  const plugins = list.plugins.filter((p) => p.type !== PLUGIN_TYPE);
  plugins.push(entry);
  writeAtomic(out, JSON.stringify({ ...list, plugins }, null, 2) + '\n', 0o644);
  if (out !== file) fs.unlinkSync(file);
  return out;
}

/** Take netfence-cni out of the chain of every network config in confDir that has it (the
 *  other plugins stay as they are, in order). Returns the files changed. */
export function removeFromChains(confDir: string): string[] {
  const changed: string[] = [];
  for (const name of fs
    .readdirSync(confDir)
    .filter((n) => n.endsWith('.conflist'))
    .sort()) {
    const file = path.join(confDir, name);
    let list: ConfList;
    try {
      list = JSON.parse(fs.readFileSync(file, 'utf8')) as ConfList;
    } catch {
      continue; // not ours to judge: the runtime reports a broken config itself
    }
    if (!Array.isArray(list.plugins) || !list.plugins.some((p) => p?.type === PLUGIN_TYPE)) continue;
    const plugins = list.plugins.filter((p) => p?.type !== PLUGIN_TYPE);
    writeAtomic(file, JSON.stringify({ ...list, plugins }, null, 2) + '\n', 0o644);
    changed.push(file);
  }
  return changed;
}

/** Uninstall: out of every chain first (the runtime stops calling it), then its files. */
export function uninstall(binDir: string, confDir: string): string[] {
  const changed = fs.existsSync(confDir) ? removeFromChains(confDir) : [];
  fs.rmSync(path.join(binDir, PLUGIN_TYPE), { force: true });
  fs.rmSync(path.join(binDir, FALLBACK_DIR), { recursive: true, force: true });
  return changed;
}

function main(argv: string[]): void {
  const opts = new Command('netfence-cni-install')
    .option('--cni-bin-dir <dir>', 'host CNI binary directory', '/opt/cni/bin')
    .option('--cni-conf-dir <dir>', 'host CNI network config directory', '/etc/cni/net.d')
    .option('--agent-socket <path>', 'agent socket the plugin asks', DEFAULT_AGENT_SOCKET)
    .option('--fail-open', 'let pods start when the agent cannot be asked', false)
    .option('--uninstall', 'take netfence-cni out of every chain and remove its files', false)
    .parse(argv)
    .opts<{ cniBinDir: string; cniConfDir: string; agentSocket: string; failOpen: boolean; uninstall: boolean }>();
  if (opts.uninstall) {
    const changed = uninstall(opts.cniBinDir, opts.cniConfDir);
    process.stdout.write(
      `netfence-cni removed from ${opts.cniBinDir}${changed.length ? `, unchained in ${changed.join(', ')}` : ''}\n`,
    );
    return;
  }
  installBinary(opts.cniBinDir, path.resolve(__dirname, '../..'));
  const primary = primaryConfig(opts.cniConfDir);
  if (!primary)
    throw new Error(
      `install netfence-cni: no CNI network config in ${opts.cniConfDir} (is the primary CNI installed?)`,
    );
  const written = addToChain(primary, { type: PLUGIN_TYPE, agentSocket: opts.agentSocket, failOpen: opts.failOpen });
  process.stdout.write(`netfence-cni installed in ${opts.cniBinDir}, chained in ${written}\n`);
}

if (require.main === module) {
  try {
    main(process.argv);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  }
}
