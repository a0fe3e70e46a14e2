// Scale benchmark: 100k pods / 10k namespaces / 20k policies (bench/statedir.ts, with ten
// ClusterNetworkPolicies) from files and from the Kubernetes source's list path to map
// entries, each in a fresh child process (bench/scale-child.ts) so its peak RSS is the
// apply's; in the files child also the reload after one file is edited, one pod added and a
// change to a policy whose subject is 1k pods. The same directory at 10k pods gives the
// agent's steady-state RSS there and the map writes of a pod added at a tenth of the scale.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { WATCHED_RESOURCES } from '../src/sources/kubernetes';
import { apiVersionOf, collectionPath } from '../src/sources/kubernetes-resources';
import { parseYamlText } from '../src/sources/yaml-docs';
import { REPO_ROOT } from './datapath';
import { jsonChild } from './json-child';
import type { ScaleChildResult } from './scale-child';
import { type StateDirSpec, writeStateDir } from './statedir';
import { percentile } from './stats';
import type { ScaleResults } from './types';

export const SCALE_DIR: StateDirSpec = {
  namespaces: 10_000,
  policiesPerNamespace: 2,
  podsPerNamespace: 10,
  nodes: 1000,
  clusterPolicies: 10,
  identities: 262_144,
};
/** A tenth of SCALE_DIR, with as many pods per node. */
export const SCALE_DIR_10K: StateDirSpec = { ...SCALE_DIR, namespaces: 1000, nodes: 100 };

export interface ScaleOptions {
  samples: number;
  log: (msg: string) => void;
}

// --expose-gc: the steady-state RSS is read after a full collection.
const child = (args: string[]): Promise<ScaleChildResult> =>
  jsonChild<ScaleChildResult>('scale-child', args, ['--expose-gc']);

/** The fake API server (test/helpers/fake-apiserver-main) in a process of its own, holding
 *  every object of `dir` in its wire form. */
export async function apiServerWith(dir: string): Promise<{ url: string; stop: () => void }> {
  const main = path.join(REPO_ROOT, 'dist', 'test', 'helpers', 'fake-apiserver-main.js');
  const p = spawn(process.execPath, [main], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: p.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<Record<string, unknown>> =>
    JSON.parse((await lines.next()).value as string) as Record<string, unknown>;
  const { url } = (await next()) as { url: string };
  const pathOf = new Map(WATCHED_RESOURCES.map((r) => [`${apiVersionOf(r)}/${r.kind}`, collectionPath(r)]));
  let sent = 0;
  for (const name of fs.readdirSync(dir).sort()) {
    for (const o of parseYamlText(fs.readFileSync(path.join(dir, name), 'utf8'), name).objects) {
      const { apiVersion, kind } = o.doc as { apiVersion: string; kind: string };
      if (kind === 'NetfenceConfig') continue; // the agent's own file (--config), not an API object
      const at = pathOf.get(`${apiVersion}/${kind}`);
      if (!at) throw new Error(`fake API server: no collection for ${apiVersion}/${kind}`);
      if (!p.stdin.write(`${JSON.stringify({ op: 'put', path: at, obj: o.doc, quiet: true })}\n`))
        await new Promise((r) => p.stdin.once('drain', r));
      sent++;
    }
  }
  for (let i = 0; i < sent; i++) {
    const reply = await next();
    if (reply.ok !== true) throw new Error(`fake API server: put: ${String(reply.error)}`);
  }
  return { url, stop: () => p.stdin.end() };
}

export function kubeconfig(dir: string, url: string): string {
  const file = path.join(dir, 'kubeconfig');
  fs.writeFileSync(
    file,
    [
      'apiVersion: v1',
      'kind: Config',
      // The client refuses plain HTTP unless TLS verification is off.
      `clusters: [{name: fake, cluster: {server: "${url}", insecure-skip-tls-verify: true}}]`,
      'users: [{name: u, user: {token: bench}}]',
      'contexts: [{name: c, context: {cluster: fake, user: u}}]',
      'current-context: c',
      '',
    ].join('\n'),
  );
  return file;
}

const p99 = (ms: number[] | undefined): number => (ms?.length ? percentile(ms, 99) : NaN);

export async function runScale(opts: ScaleOptions): Promise<ScaleResults> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nf-bench-scale-'));
  try {
    const small = path.join(tmp, 'state-10k');
    const big = path.join(tmp, 'state-100k');
    writeStateDir(small, SCALE_DIR_10K);
    const bytes = writeStateDir(big, SCALE_DIR);
    const samples = ['--samples', String(opts.samples)];
    opts.log('scale: 10k pods from files (steady-state RSS, pod-add writes)');
    const tenth = await child(['--from', 'files', '--dir', small, ...samples]);
    opts.log(
      `scale: 100k pods from files (${(bytes / 1e6).toFixed(1)} MB of YAML), ${opts.samples} pods added, ${opts.samples} policy changes`,
    );
    const files = await child(['--from', 'files', '--dir', big, ...samples]);
    opts.log('scale: 100k pods from the Kubernetes source (fake API server)');
    const server = await apiServerWith(big);
    let api: ScaleChildResult;
    try {
      api = await child([
        '--from',
        'api',
        '--kubeconfig',
        kubeconfig(tmp, server.url),
        '--config',
        path.join(big, 'netfence.yaml'),
      ]);
    } finally {
      server.stop();
    }
    return {
      bytes,
      files,
      api,
      tenth,
      podAddP99Ms: p99(files.podAdd?.samplesMs),
      policyChangeP99Ms: p99(files.policyChange?.samplesMs),
    };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
