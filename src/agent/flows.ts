// Drop events (nf_events ring buffer) -> flow records with Hubble's field names, so
// tools that read Hubble JSON read these; logging is rate-limited per second.
import { IPPROTO, NF_REASON_DESC, NfDir, type DropEvent } from '../datapath/codecs';
import type { CompileResult } from '../compile/output';
import type { Snapshot } from '../model/types';

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

const L4_NAME: Record<number, string> = { [IPPROTO.TCP]: 'TCP', [IPPROTO.UDP]: 'UDP', [IPPROTO.SCTP]: 'SCTP', [IPPROTO.ICMP]: 'ICMPv4', [IPPROTO.ICMPV6]: 'ICMPv6' };

/** What turns ids and addresses in events back into names. */
export interface FlowContext {
  podByIp: Map<string, FlowEndpoint>;
  compiled: Pick<CompileResult, 'policies' | 'rules' | 'endpoints'>;
}

export function flowContext(snapshot: Snapshot, compiled: FlowContext['compiled']): FlowContext {
  const podByIp = new Map<string, FlowEndpoint>();
  for (const p of snapshot.pods) {
    for (const ip of [...p.ips, ...p.networks.flatMap((n) => n.ips)]) podByIp.set(ip, { namespace: p.namespace, pod_name: p.name });
  }
  return { podByIp, compiled };
}

export function toFlow(ev: DropEvent, ctx: FlowContext, now = new Date()): FlowRecord {
  const rule = ctx.compiled.rules.find((r) => r.table === ev.table && r.index === ev.ruleIndex);
  const ports = ev.proto === IPPROTO.TCP || ev.proto === IPPROTO.UDP || ev.proto === IPPROTO.SCTP ? { source_port: ev.sport, destination_port: ev.dport } : {};
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
    policy: rule?.policy ?? ctx.compiled.policies[ev.policyId],
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
