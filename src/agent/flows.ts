// Drop events (nf_events ring buffer) -> flow records with Hubble's field names, so
// tools that read Hubble JSON read these; logging is rate-limited per second. A drop by
// the isolation rule (it belongs to no policy) names the policies that isolate the endpoint.
import { IPPROTO, NF_REASON_DESC, NF_TABLE_DENY, NfDir } from '../wire/abi';
import type { DropEvent } from '../wire/events';
import type { CompiledEndpoint, CompileResult } from '../compile/output';
import { ISOLATION_RULE, type Direction, type Policy } from '../model/rules';
import type { PolicyRef, Snapshot } from '../model/types';
import { subjectSelects, type Endpoint } from '../selectors/resolve';

export interface FlowEndpoint {
  namespace?: string;
  pod_name?: string;
}

export interface FlowRecord {
  time: string;
  verdict: 'DROPPED';
  drop_reason_desc: string;
  traffic_direction: 'INGRESS' | 'EGRESS';
  IP: { source: string; destination: string; ipVersion: 'IPv4' | 'IPv6' };
  l4: Record<string, { source_port?: number; destination_port?: number }>;
  source: FlowEndpoint;
  destination: FlowEndpoint;
  interface: { index: number; name?: string };
  policy?: string;
  rule?: string;
}

const L4_NAME: Record<number, string> = {
  [IPPROTO.TCP]: 'TCP',
  [IPPROTO.UDP]: 'UDP',
  [IPPROTO.SCTP]: 'SCTP',
  [IPPROTO.ICMP]: 'ICMPv4',
  [IPPROTO.ICMPV6]: 'ICMPv6',
};

/** Endpoint id -> direction -> what an isolation drop blames, e.g.
 *  "isolation (NetworkPolicy demo/a, demo/b)". Only endpoints isolated in a direction. */
export type IsolationNames = Record<string, Partial<Record<Direction, string>>>;

/** What turns ids and addresses in events back into names. */
export interface FlowContext {
  podByIp: Map<string, FlowEndpoint>;
  compiled: Pick<CompileResult, 'policies' | 'rules' | 'endpoints'>;
  isolation?: IsolationNames;
}

export function flowContext(
  snapshot: Snapshot,
  compiled: FlowContext['compiled'],
  isolation: IsolationNames = isolationNames(snapshot, compiled),
): FlowContext {
  const podByIp = new Map<string, FlowEndpoint>();
  for (const p of snapshot.pods) {
    for (const ip of [...p.ips, ...p.networks.flatMap((n) => n.ips)])
      podByIp.set(ip, { namespace: p.namespace, pod_name: p.name });
  }
  return { podByIp, compiled, isolation };
}

function selectorEndpoint(s: Snapshot, ep: CompiledEndpoint): Endpoint | undefined {
  if (ep.kind === 'host') {
    const node = s.nodes.find((n) => n.name === ep.node);
    return node && { kind: 'node', node };
  }
  const pod = s.pods.find((p) => `${p.namespace}/${p.name}` === ep.pod);
  return pod && { kind: 'pod', pod };
}

/** As the compiler selects: policies without networks govern the primary network,
 *  MultiNetworkPolicies only the secondary networks they name. */
function onNetwork(p: Policy, network: string | undefined): boolean {
  return p.networks === undefined ? network === undefined : network !== undefined && p.networks.includes(network);
}

/** "isolation (NetworkPolicy demo/a, demo/b; MultiNetworkPolicy demo/c)" */
function describeIsolation(refs: PolicyRef[]): string {
  const byKind = new Map<string, string[]>();
  for (const r of refs)
    byKind.set(r.kind, [...(byKind.get(r.kind) ?? []), r.namespace ? `${r.namespace}/${r.name}` : r.name]);
  const parts = [...byKind].map(([kind, names]) => `${kind} ${names.sort().join(', ')}`);
  return `${ISOLATION_RULE} (${parts.join('; ')})`;
}

/** For every endpoint whose table ends in the isolation rule: the netpol-tier policies
 *  that select it and isolate that direction. */
export function isolationNames(
  snapshot: Snapshot,
  compiled: Pick<CompileResult, 'rules' | 'endpoints'>,
): IsolationNames {
  const isolatingTables = new Set(compiled.rules.filter((r) => r.rule === ISOLATION_RULE).map((r) => r.table));
  const out: IsolationNames = {};
  for (const ep of compiled.endpoints) {
    const dirs = (['ingress', 'egress'] as const).filter((d) =>
      isolatingTables.has(d === 'ingress' ? ep.ingressTable : ep.egressTable),
    );
    const subject = dirs.length ? selectorEndpoint(snapshot, ep) : undefined;
    if (!subject) continue;
    for (const dir of dirs) {
      const refs = snapshot.policies
        .filter(
          (p) =>
            p.tier === 'netpol' &&
            p.isolates.includes(dir) &&
            onNetwork(p, ep.network) &&
            subjectSelects(snapshot, p.subject, subject),
        )
        .map((p) => p.ref);
      if (refs.length) (out[ep.id] ??= {})[dir] = describeIsolation(refs);
    }
  }
  return out;
}

/** What a drop on NF_TABLE_DENY blames: no policy, the endpoint's tables did not fit. */
export const OVER_CAPACITY = '(isolated: over capacity)';

export function toFlow(ev: DropEvent, ctx: FlowContext, now = new Date()): FlowRecord {
  const rule = ctx.compiled.rules.find((r) => r.table === ev.table && r.index === ev.ruleIndex);
  const dir: Direction = ev.dir === NfDir.INGRESS ? 'ingress' : 'egress';
  const isolatedBy =
    ev.table === NF_TABLE_DENY
      ? OVER_CAPACITY
      : rule?.rule === ISOLATION_RULE
        ? ctx.isolation?.[ev.epId]?.[dir]
        : undefined;
  const ports =
    ev.proto === IPPROTO.TCP || ev.proto === IPPROTO.UDP || ev.proto === IPPROTO.SCTP
      ? { source_port: ev.sport, destination_port: ev.dport }
      : {};
  return {
    time: now.toISOString(),
    verdict: 'DROPPED',
    drop_reason_desc: (NF_REASON_DESC[ev.reason] ?? `reason_${ev.reason}`).toUpperCase(),
    traffic_direction: ev.dir === NfDir.INGRESS ? 'INGRESS' : 'EGRESS',
    IP: { source: ev.saddr, destination: ev.daddr, ipVersion: ev.saddr.includes(':') ? 'IPv6' : 'IPv4' },
    l4: { [L4_NAME[ev.proto] ?? `proto_${ev.proto}`]: ports },
    source: ctx.podByIp.get(ev.saddr) ?? {},
    destination: ctx.podByIp.get(ev.daddr) ?? {},
    interface: { index: ev.ifindex, name: ctx.compiled.endpoints.find((e) => e.ifindex === ev.ifindex)?.ifname },
    policy: isolatedBy ?? rule?.policy ?? ctx.compiled.policies[ev.policyId],
    rule: rule?.rule,
  };
}

/** At most `perSecond` records per wall-clock second; the rest are counted. */
export class RateLimiter {
  private second = 0;
  private used = 0;
  constructor(private readonly perSecond: number) {}
  allow(nowMs = Date.now()): boolean {
    const s = Math.floor(nowMs / 1000);
    if (s !== this.second) {
      this.second = s;
      this.used = 0;
    }
    return this.used++ < this.perSecond;
  }
}
