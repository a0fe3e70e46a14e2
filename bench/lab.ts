// End to end in the lab (`netfence lab up` with its agents): time from a policy file
// change to the probe's verdict flipping, and from a pod's veth appearing to the pod
// being isolated. Probes come from a long-lived prober in the client pod's namespace;
// a sample is the start of the first probe that shows the new verdict (confirmed by a
// second one), so it is an upper bound with a resolution of one probe (<= PROBE_TIMEOUT_MS).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { decodeEndpoint } from '../src/wire/endpoint';
import { encodeU32 } from '../src/wire/bytes';
import { run } from '../src/lab/exec';
import { REPO_ROOT } from './datapath';
import { percentile } from './stats';
import type { LabResults } from './types';

const PREFIX = 'nfb-';
const PROBE_TIMEOUT_MS = 50;
const FLIP_DEADLINE_MS = 10_000;
const SERVER = { ip: '10.244.0.12', port: 8080 };
const LATE = { ip: '10.244.0.13', port: 8080, key: 'bench/late' };

const CLUSTER = `apiVersion: v1
kind: Node
metadata: { name: bench-node, labels: { kubernetes.io/hostname: bench-node } }
status: { addresses: [{ type: InternalIP, address: 10.0.0.10 }] }
---
apiVersion: v1
kind: Namespace
metadata: { name: bench }
${['client:10.244.0.11', 'server:10.244.0.12', 'late:10.244.0.13']
  .map((p) => {
    const [name, ip] = p.split(':');
    return `---
apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: bench, labels: { app: ${name} } }
spec:
  nodeName: bench-node
  containers: [{ name: c, image: x, ports: [{ name: http, containerPort: 8080 }] }]
status: { podIPs: [{ ip: ${ip} }] }`;
  })
  .join('\n')}
`;

const CONFIG = `apiVersion: netfence.io/v1alpha1
kind: NetfenceConfig
metadata: { name: netfence }
hostInterfaces: ["eth*"]
serviceCIDRs: [10.96.0.0/16]
privileged: { enabled: false, established: false, loopback: true, apiServers: [], kubeletPort: 10250, agentPorts: [] }
eventsPerSecond: 0
`;

const isolate = (app: string): string => `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: isolate-${app}, namespace: bench }
spec:
  podSelector: { matchLabels: { app: ${app} } }
  policyTypes: [Ingress]
`;

class Prober {
  private readonly lines: AsyncIterator<string>;
  constructor(private readonly p: ChildProcessWithoutNullStreams) {
    this.lines = readline.createInterface({ input: p.stdout })[Symbol.asyncIterator]();
  }
  static async start(netns: string): Promise<Prober> {
    const p = spawn('ip', [
      'netns',
      'exec',
      netns,
      process.execPath,
      path.join(REPO_ROOT, 'dist', 'bench', 'prober.js'),
    ]);
    const pr = new Prober(p);
    const first = await pr.lines.next();
    if (first.value !== 'ready') throw new Error(`start prober in ${netns}: ${String(first.value)}`);
    return pr;
  }
  async probe(t: { ip: string; port: number }): Promise<string> {
    this.p.stdin.write(`${t.ip} ${t.port} ${PROBE_TIMEOUT_MS}\n`);
    const r = await this.lines.next();
    if (r.done) throw new Error('probe: the prober exited');
    return r.value;
  }
  stop(): void {
    this.p.kill('SIGKILL');
  }
}

/** Milliseconds from `t0` to the start of the first probe showing `want` (confirmed). */
async function timeToVerdict(
  pr: Prober,
  target: { ip: string; port: number },
  want: string,
  t0: number,
): Promise<number> {
  while (performance.now() - t0 < FLIP_DEADLINE_MS) {
    const start = performance.now();
    if ((await pr.probe(target)) === want && (await pr.probe(target)) === want) return start - t0;
  }
  throw new Error(`probe ${target.ip}:${target.port}: still not ${want} after ${FLIP_DEADLINE_MS} ms`);
}

const cli = (args: string[], timeoutMs = 180_000) =>
  run([process.execPath, path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js'), ...args], undefined, timeoutMs);

interface LabModules {
  labNameFor(dir: string, prefix: string): string;
  loadState(name: string):
    | {
        bpffsRoot: string;
        plan?: { nodes: { name: string; netns: string }[]; pods: { key: string; netns: string; hostIf?: string }[] };
      }
    | undefined;
}

export async function runLab(opts: { changes: number; log: (m: string) => void }): Promise<LabResults | string> {
  if (!existsSync(path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js')))
    return 'netfence CLI not built (dist/src/cli/main.js)';
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const lab = { ...require('../src/lab/lifecycle'), ...require('../src/lab/state') } as LabModules;
  const work = `/tmp/nfb-lab-${process.pid}`;
  const state = path.join(work, 'state');
  const policies = path.join(state, 'policies');
  mkdirSync(policies, { recursive: true });
  writeFileSync(path.join(state, 'cluster.yaml'), CLUSTER);
  writeFileSync(path.join(state, 'netfence.yaml'), CONFIG);
  writeFileSync(path.join(policies, 'isolate-late.yaml'), isolate('late'));
  // Changes land atomically: written beside the state dir, renamed in.
  const place = (name: string, text: string | null): void => {
    const dst = path.join(policies, name);
    if (text === null) rmSync(dst, { force: true });
    else {
      writeFileSync(path.join(work, name), text);
      renameSync(path.join(work, name), dst);
    }
  };
  let prober: Prober | undefined;
  try {
    opts.log('lab: up');
    await cli(['lab', 'up', '--state', state, '--prefix', PREFIX]);
    const st = lab.loadState(lab.labNameFor(state, PREFIX));
    const client = st?.plan?.pods.find((p) => p.key === 'bench/client');
    if (!client) throw new Error('lab up: no state for pod bench/client');
    prober = await Prober.start(client.netns);
    await timeToVerdict(prober, SERVER, 'allow', performance.now());

    const flips: number[] = [];
    for (let i = 0; i < opts.changes; i++) {
      const want = i % 2 === 0 ? 'deny' : 'allow';
      place('isolate-server.yaml', want === 'deny' ? isolate('server') : null);
      flips.push(await timeToVerdict(prober, SERVER, want, performance.now()));
      await new Promise((r) => setTimeout(r, 200));
    }
    opts.log(
      `lab: policy flips p50 ${percentile(flips, 50).toFixed(0)} ms, p99 ${percentile(flips, 99).toFixed(0)} ms`,
    );
    const result: LabResults = {
      changes: opts.changes,
      policyFlip: { p50Ms: percentile(flips, 50), p99Ms: percentile(flips, 99), samplesMs: flips },
    };

    // Pod appearing: remove the late pod's veth, recreate it with the lab's own plan ops.
    try {
      result.podIsolation = await podIsolation(prober, state, st!, Math.max(3, Math.floor(opts.changes / 5)));
    } catch (e) {
      opts.log(`lab: pod isolation not measured: ${(e as Error).message}`);
    }
    return result;
  } finally {
    prober?.stop();
    await cli(['lab', 'down', '--state', state, '--prefix', PREFIX]).catch((e: Error) =>
      opts.log(`lab down: ${e.message}`),
    );
    rmSync(work, { recursive: true, force: true });
  }
}

async function podIsolation(
  pr: Prober,
  stateDir: string,
  st: NonNullable<ReturnType<LabModules['loadState']>>,
  samples: number,
): Promise<LabResults['policyFlip']> {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { planLab } = require('../src/lab/plan') as {
    planLab(s: unknown, o: { id: string; prefix: string }): { ops: { argv: string[] }[] };
  };
  const { loadStateDir } = require('../src/sources/directory') as { loadStateDir(dir: string): unknown };
  /* eslint-enable @typescript-eslint/no-require-imports */
  const pod = st.plan!.pods.find((p) => p.key === LATE.key);
  const node = st.plan!.nodes[0];
  if (!pod?.hostIf) throw new Error(`find ${LATE.key} in the lab plan: missing`);
  const hostIf = pod.hostIf;
  const ops = planLab(loadStateDir(stateDir), { id: path.resolve(stateDir), prefix: PREFIX }).ops;
  const first = ops.findIndex((o) => o.argv.includes('link') && o.argv.includes('add') && o.argv.includes(hostIf));
  if (first < 0) throw new Error(`find the veth ops of ${LATE.key}: no "link add ${hostIf}"`);
  const linkOps = ops
    .slice(first)
    .filter((o, i, all) => all.slice(0, i + 1).every((x) => x.argv.some((a) => a.includes(hostIf) || a === pod.netns)));
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { native } = require('../src/datapath/native') as typeof import('../src/datapath/native');
  const endpoints = native.mapOpenPinned(path.join(st.bpffsRoot, node.name, 'nf_endpoints'));
  const ms: number[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      await run(['ip', '-n', node.netns, 'link', 'del', hostIf]);
      await new Promise((r) => setTimeout(r, 1000)); // let the agent see the pod gone
      const t0 = performance.now();
      for (const o of linkOps) await run(o.argv);
      const ifindex = (
        JSON.parse((await run(['ip', '-n', node.netns, '-j', 'link', 'show', hostIf])).stdout) as { ifindex: number }[]
      )[0].ifindex;
      // Isolated = the endpoint entry names an ingress table, and then a probe is denied
      // (a probe alone cannot tell "not reachable yet" from "isolated").
      const ingressTable = (): number => {
        const v = native.mapLookup(endpoints.fd, encodeU32(ifindex));
        return v ? decodeEndpoint(v).ingressTable : 0;
      };
      while (ingressTable() === 0) {
        if (performance.now() - t0 > FLIP_DEADLINE_MS)
          throw new Error(`isolate ${LATE.key}: no endpoint entry for ${hostIf} after ${FLIP_DEADLINE_MS} ms`);
        await new Promise((r) => setTimeout(r, 2));
      }
      ms.push(await timeToVerdict(pr, LATE, 'deny', t0));
    }
  } finally {
    native.closeFd(endpoints.fd);
  }
  return { p50Ms: percentile(ms, 50), p99Ms: percentile(ms, 99), samplesMs: ms };
}
