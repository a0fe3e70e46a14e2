// Sustained pod churn against a lab node's agent (src/lab/churn): pods added at `rate`
// per second, each deleted a second later (as many deletes per second), for `seconds`.
// A pod is enforced once its endpoint entry carries its ingress table (a policy isolates
// every churned pod) and the hooks that entry needs are recorded (a pinned TCX link or
// clsact filter marker); the time runs from the bench writing the `ip link add` of its veth. The agent's CPU is user + sys
// of its process over the churn window, as % of one CPU.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { NativeAddon } from '../src/datapath/native-api';
import { waitForAgents } from '../src/lab/barrier';
import { leftovers, runChurn, type ChurnSlot } from '../src/lab/churn';
import { run } from '../src/lab/exec';
import { labDown, labNameFor, labUp } from '../src/lab/lifecycle';
import { writeAtomic } from '../src/lab/workdir';
import { loadStateDirAsync } from '../src/sources/directory';
import { percentile } from './stats';
import type { ChurnResults } from './types';

const PREFIX = 'nfc-';
/** Slots (pods the state lists) per pod added per second: a slot's address is reused only
 *  after the namespace teardown of its previous pod is long done. */
const SLOTS_PER_RATE = 6;
const LIFETIME_MS = 1000;
/** A pod not enforced within this counts with it in the percentiles (it never was). */
const DEADLINE_MS = 10_000;

const CLUSTER = `apiVersion: v1
kind: Node
metadata: { name: churn-node }
status: { addresses: [{ type: InternalIP, address: 10.0.0.10 }] }
---
apiVersion: v1
kind: Namespace
metadata: { name: churn }
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: isolate, namespace: churn }
spec: { podSelector: { matchLabels: { app: churn } }, policyTypes: [Ingress] }
`;

const CONFIG = `apiVersion: netfence.io/v1alpha1
kind: NetfenceConfig
metadata: { name: netfence }
hostInterfaces: ["eth*"]
serviceCIDRs: [10.96.0.0/16]
eventsPerSecond: 0
`;

/** The churn slots' pods (labels app=churn, one address each from 10.250.0.0/16). */
export function churnSlots(n: number): ChurnSlot[] {
  return Array.from({ length: n }, (_, i) => ({ pod: `churn/p${i}`, ip: `10.250.${i >> 8}.${i & 255}` }));
}

export function slotsYaml(slots: readonly ChurnSlot[], node: string): string {
  return slots
    .map(({ pod, ip }) => {
      const [namespace, name] = pod.split('/');
      return `apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: ${namespace}, labels: { app: churn } }
spec: { nodeName: ${node}, containers: [{ name: c, image: x }] }
status: { podIPs: [{ ip: ${ip} }] }
`;
    })
    .join('---\n');
}

export async function runChurnBench(
  addon: NativeAddon,
  opts: { rate: number; seconds: number; log: (m: string) => void },
): Promise<ChurnResults> {
  const work = `/tmp/nfb-churn-${process.pid}`;
  const stateDir = path.join(work, 'state');
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(path.join(stateDir, 'cluster.yaml'), CLUSTER);
  writeFileSync(path.join(stateDir, 'netfence.yaml'), CONFIG);
  try {
    opts.log('churn: lab up');
    const lab = await labUp(await loadStateDirAsync(stateDir), { stateDir, prefix: PREFIX, agents: true });
    const agent = lab.agents[0];
    const node = lab.plan!.nodes[0];
    const bpffsRoot = path.join(lab.bpffsRoot, node.name);
    // Listed only now, so the lab does not create them: the churn does.
    const slots = churnSlots(opts.rate * SLOTS_PER_RATE);
    writeAtomic(path.join(stateDir, 'pods.yaml'), slotsYaml(slots, node.name));
    await waitForAgents(lab);
    opts.log(`churn: ${opts.rate} pods/s added and deleted for ${opts.seconds} s over ${slots.length} slots`);
    const r = await runChurn({
      addon,
      nodeNetns: node.netns,
      bpffsRoot,
      slots,
      rate: opts.rate,
      seconds: opts.seconds,
      lifetimeMs: LIFETIME_MS,
      netnsPrefix: `${lab.name}-c`,
      ifPrefix: 'nfc',
      wanted: (ep) => ep.ingressTable !== 0,
      deadlineMs: DEADLINE_MS,
      cpuPid: agent.pid,
    });
    const nodeLinks = JSON.parse((await run(['ip', '-n', node.netns, '-j', 'link', 'show'])).stdout) as {
      ifname: string;
      ifindex: number;
    }[];
    const left = leftovers(
      addon,
      bpffsRoot,
      nodeLinks.map((l) => ({ name: l.ifname, ifindex: l.ifindex })),
    );
    const enforceMs = [...r.enforceMs, ...r.notEnforced.map(() => DEADLINE_MS)];
    const result: ChurnResults = {
      rate: opts.rate,
      seconds: r.seconds,
      pods: r.pods.length,
      enforce: { p50Ms: percentile(enforceMs, 50), p99Ms: percentile(enforceMs, 99), maxMs: Math.max(...enforceMs) },
      remove: { p50Ms: percentile(r.removeMs, 50), p99Ms: percentile(r.removeMs, 99), maxMs: Math.max(...r.removeMs) },
      notEnforced: r.notEnforced.length,
      notRemoved: r.notRemoved.length,
      leakedEntries: left.entries.length,
      leakedPins: left.pins.length,
      ipErrors: r.ipErrors.slice(0, 5),
      agentCpuPercent: r.cpuPercent ?? NaN,
      agentPasses: agentPasses(agent.log, r.window),
    };
    opts.log(
      `churn: enforced p50 ${result.enforce.p50Ms.toFixed(1)} ms, p99 ${result.enforce.p99Ms.toFixed(1)} ms, max ${result.enforce.maxMs.toFixed(1)} ms; ` +
        `${result.notEnforced} never enforced, ${result.notRemoved} never removed, agent CPU ${result.agentCpuPercent.toFixed(0)} %`,
    );
    return result;
  } finally {
    await labDown(labNameFor(stateDir, PREFIX)).catch((e: Error) => opts.log(`churn: lab down: ${e.message}`));
    rmSync(work, { recursive: true, force: true });
  }
}

/** The agent's passes that changed something within the window, from its log (pino JSON:
 *  "reconciled" at info with the pass's seconds). */
function agentPasses(logFile: string, window: { start: number; end: number }): ChurnResults['agentPasses'] {
  const ms = readFileSync(logFile, 'utf8')
    .split('\n')
    .filter((l) => l.includes('"msg":"reconciled"'))
    .map((l) => JSON.parse(l) as { time: number; seconds: number })
    .filter((r) => r.time >= window.start && r.time <= window.end)
    .map((r) => r.seconds * 1000);
  return { count: ms.length, p50Ms: percentile(ms, 50), p99Ms: percentile(ms, 99) };
}
