// nf_event (a drop event on the ring buffer) and nf_ratelimit (its per-endpoint budget).
import { bytesToAddr } from './addr';
import { r16, r32, r64, w32, w64 } from './bytes';
import { ADDR_BYTES, LAYOUT, alloc, checkSize } from './layout';

export interface DropEvent {
  tsNs: bigint;
  epId: number;
  ifindex: number;
  table: number;
  policyId: number;
  ruleId: number;
  ruleIndex: number;
  dir: number;
  proto: number;
  reason: number;
  action: number;
  sport: number;
  dport: number;
  saddr: string;
  daddr: string;
}

const E = LAYOUT.nf_event.fields;

export function decodeEvent(b: Buffer): DropEvent {
  checkSize('nf_event', b);
  return {
    tsNs: r64(b, E.ts_ns),
    epId: r32(b, E.ep_id),
    ifindex: r32(b, E.ifindex),
    table: r32(b, E.table),
    policyId: r32(b, E.policy_id),
    ruleId: r32(b, E.rule_id),
    ruleIndex: r16(b, E.rule_index),
    dir: b[E.dir],
    proto: b[E.proto],
    reason: b[E.reason],
    action: b[E.action],
    sport: b.readUInt16BE(E.sport),
    dport: b.readUInt16BE(E.dport),
    saddr: bytesToAddr(b.subarray(E.saddr, E.saddr + ADDR_BYTES)),
    daddr: bytesToAddr(b.subarray(E.daddr, E.daddr + ADDR_BYTES)),
  };
}

export interface RateLimit {
  windowStartNs: bigint;
  count: number;
}

const RL = LAYOUT.nf_ratelimit.fields;

export function encodeRateLimit(r: RateLimit): Buffer {
  const b = alloc('nf_ratelimit');
  w64(b, RL.window_start_ns, r.windowStartNs);
  w32(b, RL.count, r.count);
  return b;
}

export function decodeRateLimit(b: Buffer): RateLimit {
  checkSize('nf_ratelimit', b);
  return { windowStartNs: r64(b, RL.window_start_ns), count: r32(b, RL.count) };
}
