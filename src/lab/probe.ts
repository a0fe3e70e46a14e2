// `lab probe`: real connections between lab endpoints, one client process per source
// netns doing all its connects concurrently, after the agents' generation barrier.
import { isIPv6 } from 'node:net';
import type { Protocol } from '../model/types';
import type { ConnectResult, ConnectTarget } from './client';
import { labScript, run } from './exec';
import type { LabPlan } from './plan';
import type { LabState } from './state';

export type Verdict = 'allow' | 'deny' | 'skip' | 'error';

export interface ProbePair {
  from: string;
  to: string;
  port: string; // "80/TCP"
  /** Address family probed, when the pair has several. */
  family?: 4 | 6;
}

export interface PairResult extends ProbePair {
  verdict: Verdict;
  detail?: string;
  /** Who answered ("netfence ns/pod"): tells which service backend replied. */
  reply?: string;
}

/** A probe source or destination: "ns/pod", "node/NAME", "api" (the fabric's emulated
 *  API servers), "svc:ns/name" (ClusterIPs), or a literal IP (destination only). */
interface Endpoint {
  id: string;
  netns?: string;
  ips: string[];
}

type PlanRecord = Omit<LabPlan, 'ops'>;

export function resolveEndpoint(plan: PlanRecord, id: string, network?: string): Endpoint {
  if (id.startsWith('node/')) {
    const node = plan.nodes.find((n) => n.name === id.slice(5));
    if (!node) throw new Error(`probe endpoint ${id}: no such node in the lab`);
    return { id, netns: node.netns, ips: node.addresses };
  }
  if (id === 'api') {
    if (plan.apiServers.length === 0) throw new Error('probe endpoint api: config.privileged.apiServers is empty');
    return { id, netns: plan.fabricNetns, ips: [...new Set(plan.apiServers.map((a) => a.ip))] };
  }
  if (id.startsWith('svc:')) {
    const svc = plan.services.find((s) => s.key === id.slice(4));
    if (!svc) throw new Error(`probe endpoint ${id}: no such service in the lab`);
    return { id, ips: svc.clusterIPs };
  }
  const pod = plan.pods.find((p) => p.key === id);
  if (pod) {
    if (!network) return { id, netns: pod.netns, ips: pod.ips };
    const sec = pod.secondary.find((s) => s.network === network);
    return { id, netns: pod.netns, ips: sec?.ips ?? [] };
  }
  if (/^[0-9a-fA-F:.]+$/.test(id) && (id.includes('.') || id.includes(':'))) return { id, ips: [id] };
  throw new Error(`probe endpoint ${id}: not a lab pod, node/NAME, api, svc:ns/name or IP`);
}

/** Every ordered pair of pods (with an address on `network` when given), for each port and
 *  each address family both sides have. */
export function matrixPairs(plan: PlanRecord, ports: string[], network?: string): ProbePair[] {
  const pods = plan.pods.map((p) => resolveEndpoint(plan, p.key, network)).filter((e) => e.ips.length > 0);
  const pairs: ProbePair[] = [];
  for (const port of ports) {
    for (const from of pods) {
      for (const to of pods) {
        if (from.id === to.id) continue;
        const families = commonFamilies(from, to);
        for (const family of families)
          pairs.push({ from: from.id, to: to.id, port, ...(families.length > 1 ? { family } : {}) });
      }
    }
  }
  return pairs;
}

function familyOf(ip: string): 4 | 6 {
  return isIPv6(ip) ? 6 : 4;
}

function commonFamilies(a: Endpoint, b: Endpoint): (4 | 6)[] {
  const fa = new Set(a.ips.map(familyOf));
  return ([4, 6] as const).filter((f) => fa.has(f) && b.ips.some((ip) => familyOf(ip) === f));
}

export function parsePort(spec: string): { port: number; protocol: Protocol } {
  const m = /^(\d+)\/(TCP|UDP|SCTP)$/i.exec(spec);
  if (!m || Number(m[1]) < 1 || Number(m[1]) > 65535)
    throw new Error(`parse port "${spec}": expected N/TCP, N/UDP or N/SCTP`);
  return { port: Number(m[1]), protocol: m[2].toUpperCase() as Protocol };
}

export interface ProbeOptions {
  timeoutMs?: number;
  network?: string;
}

/** Runs the pairs for real. SCTP pairs are "skip": this kernel has no SCTP sockets. */
export async function probePairs(state: LabState, pairs: ProbePair[], opts: ProbeOptions = {}): Promise<PairResult[]> {
  const plan = state.plan;
  if (!plan) throw new Error(`probe lab ${state.name}: the state file has no plan (lab up did not finish planning)`);
  const timeoutMs = opts.timeoutMs ?? 1000;
  const results: PairResult[] = pairs.map((p) => ({ ...p, verdict: 'skip' }));
  const bySource = new Map<string, { netns: string; targets: ConnectTarget[] }>();
  pairs.forEach((pair, i) => {
    const { port, protocol } = parsePort(pair.port);
    if (protocol === 'SCTP') {
      results[i].detail = 'no SCTP in this kernel';
      return;
    }
    const from = resolveEndpoint(plan, pair.from, opts.network);
    const to = resolveEndpoint(plan, pair.to, opts.network);
    if (!from.netns) throw new Error(`probe ${pair.from}: not a probe source`);
    const family = pair.family ?? commonFamilies(from, to)[0];
    const ip = to.ips.find((a) => familyOf(a) === family);
    if (!ip || !family) {
      results[i].detail = 'no common address family';
      return;
    }
    const src = bySource.get(from.netns) ?? { netns: from.netns, targets: [] };
    src.targets.push({ id: String(i), ip, port, protocol: protocol as 'TCP' | 'UDP' });
    bySource.set(from.netns, src);
  });
  await Promise.all(
    [...bySource.values()].map(async ({ netns, targets }) => {
      const argv = ['ip', 'netns', 'exec', netns, process.execPath, labScript('client'), 'connect'];
      const { stdout } = await run(argv, JSON.stringify({ timeoutMs, targets }), timeoutMs + 30_000);
      for (const r of (JSON.parse(stdout) as { results: ConnectResult[] }).results) {
        const out = results[Number(r.id)];
        out.verdict = r.verdict;
        if (r.detail && r.verdict !== 'deny') out.detail = r.detail;
        if (r.reply) out.reply = r.reply;
      }
    }),
  );
  return results;
}

const CELL: Record<Verdict, string> = { allow: '.', deny: 'X', skip: 's', error: '!' };

/** Truth tables like the Kubernetes e2e suite: rows = from, columns = to. */
export function formatMatrix(results: PairResult[]): string {
  const groups = new Map<string, PairResult[]>();
  for (const r of results) {
    const key = r.family ? `${r.port} IPv${r.family}` : r.port;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const out: string[] = [];
  for (const [key, rs] of groups) {
    const names = [...new Set(rs.flatMap((r) => [r.from, r.to]))].sort();
    const width = Math.max(...names.map((n) => n.length));
    out.push(`${key}   (. allow, X deny, s skip, ! error)`);
    out.push(`${' '.repeat(width)}  ${names.map((_, i) => String(i).padStart(2)).join(' ')}`);
    names.forEach((from, row) => {
      const cells = names.map((to) => {
        if (to === from) return ' -';
        const r = rs.find((x) => x.from === from && x.to === to);
        return ` ${r ? CELL[r.verdict] : ' '}`;
      });
      out.push(`${from.padEnd(width)}  ${cells.join(' ')}   ${row}`);
    });
    const errors = rs.filter((r) => r.verdict === 'error');
    for (const e of errors) out.push(`  error ${e.from} -> ${e.to}: ${e.detail}`);
    out.push('');
  }
  return out.join('\n');
}

/** Fabric packet counters (v4 + v6, or `family`'s only): hairpin:<node> (the tunnel) and cross:<a>><b>. */
export async function fabricCounters(state: LabState, family?: 4 | 6): Promise<Map<string, number>> {
  const plan = state.plan!;
  const counts = new Map<string, number>();
  for (const tool of family === undefined ? ['iptables', 'ip6tables'] : [family === 4 ? 'iptables' : 'ip6tables']) {
    const { stdout } = await run([
      'ip',
      'netns',
      'exec',
      plan.fabricNetns,
      tool,
      '-w',
      '-L',
      'NF-COUNT',
      '-n',
      '-v',
      '-x',
    ]);
    for (const line of stdout.split('\n')) {
      const m = /^\s*(\d+)\s+\d+\s.*\/\*\s*(\S+)\s*\*\//.exec(line);
      if (m) counts.set(m[2], (counts.get(m[2]) ?? 0) + Number(m[1]));
    }
  }
  return counts;
}
