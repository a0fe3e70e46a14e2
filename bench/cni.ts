// CNI chain overhead: the routed chain of Debian's reference plugins (ptp + host-local) with
// and without netfence-cni chained last, run the way libcni runs a conflist
// (test/helpers/libcni.ts) in a private node namespace, one pod sandbox ADDed and DELeted
// per sample, the two chains interleaved. netfence-cni is laid out as the installer does
// (the executable, the node bundle as its fallback); the agent socket answers at once (it
// runs the plugin logic in-process), so the figures are the plugin's own cost (process
// start, one socket round trip, the agent's plugin logic), not the agent's programming
// (the lab part times that). The floor of any node plugin, a bare `node -e 0`
// under nsenter, is measured in the same rounds.
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { AgentSocket } from '../src/agent/agent-socket';
import { BUNDLE_FILE, installBinary, PLUGIN_TYPE } from '../src/cni/install';
import { CniChain, REFERENCE_PLUGINS_DIR, kubeletArgs, type NetConfList } from '../test/helpers/libcni';
import { REPO_ROOT } from './datapath';
import { onInterrupt, runSyncQuiet } from './exec';
import { percentile } from './stats';
import type { CniResults, Percentiles } from './types';

const execFileAsync = promisify(execFile);
const pct = (ms: number[]): Percentiles => ({ p50Ms: percentile(ms, 50), p99Ms: percentile(ms, 99), samplesMs: ms });

export async function runCni(opts: { pods: number; log: (msg: string) => void }): Promise<CniResults | string> {
  const dist = path.join(REPO_ROOT, 'dist');
  if (!fs.existsSync(path.join(REFERENCE_PLUGINS_DIR, 'ptp')))
    return `no reference plugins in ${REFERENCE_PLUGINS_DIR} (apt-get install containernetworking-plugins)`;
  for (const [file, build] of [
    [BUNDLE_FILE, 'build:ts'],
    [PLUGIN_TYPE, 'build:cni'],
  ]) {
    if (!fs.existsSync(path.join(dist, file))) return `dist/${file} not built (npm run ${build})`;
  }
  const node = `nfb-cni-n-${process.pid}`;
  const pod = `nfb-cni-p-${process.pid}`;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nfb-cni-'));
  const cleanup = () => {
    for (const ns of [node, pod]) runSyncQuiet('ip', ['netns', 'del', ns]);
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  const forget = onInterrupt(cleanup);
  const server = new AgentSocket({
    add: async () => {},
    del: async () => {},
    check: async () => true,
    flows: (s) => s.end(),
  });
  try {
    for (const ns of [node, pod]) execFileSync('ip', ['netns', 'add', ns]);
    const bin = path.join(tmp, 'bin');
    installBinary(bin, dist, process.execPath, 'link');
    const socket = path.join(tmp, 'agent.sock');
    await server.listen(socket);
    const exec = { nodeNetns: `/run/netns/${node}`, path: [bin, REFERENCE_PLUGINS_DIR] };
    const ptp = {
      type: 'ptp',
      ipMasq: false,
      ipam: { type: 'host-local', ranges: [[{ subnet: '10.244.0.0/24' }]], dataDir: path.join(tmp, 'ipam') },
    };
    const list = (plugins: Record<string, unknown>[]): NetConfList => ({
      cniVersion: '1.0.0',
      name: 'routed',
      plugins,
    });
    const chains = {
      without: new CniChain(list([ptp]), exec),
      with: new CniChain(list([ptp, { type: 'netfence-cni', agentSocket: socket }]), exec),
    };
    const chainAdd: Record<keyof typeof chains, number[]> = { without: [], with: [] };
    const nodeStart: number[] = [];
    for (let i = 0; i < opts.pods; i++) {
      for (const [name, chain] of Object.entries(chains) as [keyof typeof chains, CniChain][]) {
        const rt = {
          containerId: `bench-${name}-${i}`,
          netns: `/run/netns/${pod}`,
          ifName: 'eth0',
          args: kubeletArgs({ namespace: 'bench', name: `p${i}` }, `bench-${name}-${i}`),
        };
        const started = process.hrtime.bigint();
        await chain.add(rt);
        chainAdd[name].push(Number(process.hrtime.bigint() - started) / 1e6);
        await chain.del(rt);
      }
      // Timed the way the driver times a plugin (an asynchronous child, the driver's bare environment).
      const started = process.hrtime.bigint();
      await execFileAsync('nsenter', [`--net=/run/netns/${node}`, process.execPath, '-e', '0'], {
        env: { PATH: process.env.PATH },
      });
      nodeStart.push(Number(process.hrtime.bigint() - started) / 1e6);
    }
    const addMs = (plugin: string) =>
      chains.with.invocations.filter((v) => v.command === 'ADD' && v.plugin === plugin).map((v) => v.ms);
    const r: CniResults = {
      pods: opts.pods,
      chainAdd: { without: pct(chainAdd.without), with: pct(chainAdd.with) },
      pluginAdd: { ptp: pct(addMs('ptp')), netfenceCni: pct(addMs('netfence-cni')) },
      nodeStart: pct(nodeStart),
      binaryBytes: fs.statSync(path.join(dist, PLUGIN_TYPE)).size,
      bundleBytes: fs.statSync(path.join(dist, BUNDLE_FILE)).size,
    };
    opts.log(
      `cni: chain ADD p50 ${r.chainAdd.without.p50Ms.toFixed(1)} ms without, ${r.chainAdd.with.p50Ms.toFixed(1)} ms with netfence-cni ` +
        `(its ADD ${r.pluginAdd.netfenceCni.p50Ms.toFixed(1)} ms, ptp ${r.pluginAdd.ptp.p50Ms.toFixed(1)} ms, node -e 0 ${r.nodeStart.p50Ms.toFixed(1)} ms)`,
    );
    return r;
  } finally {
    await server.close();
    forget();
    cleanup();
  }
}
