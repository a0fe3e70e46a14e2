// The classifier under BPF_PROG_TEST_RUN: loads bpf/.output/netfence.bpf.o unpinned
// (every test file gets private maps), writes map entries through the wire codecs, runs
// crafted frames and reads counters, conntrack and drop events back.
//
// Table builder: a deliberately small, obviously-correct stand-in for the compiler.
// For a trie, the value of prefix P is the set of rules that match every address
// under P: rules with a CIDR containing P and no except containing P. A lookup's
// longest match P then yields exactly the rules matching the address.
import { bitmapFrom } from '../../src/compile/bitmap';
import { portRangePrefixes } from '../../src/compile/port-prefix';
import { toCidr } from '../../src/model/ip';
import { NF_CHUNK_RULES, NF_REASON_DESC, NfEpFlag } from '../../src/wire/abi';
import { encodeAddr, encodeAddrLpmKey, mappedPrefix } from '../../src/wire/addr';
import { encodeU32, encodeU8 } from '../../src/wire/bytes';
import { PLAIN_CONFIG, encodeConfig, type Config } from '../../src/wire/config';
import { decodeCt, encodeCt, type CtKey, type CtVal } from '../../src/wire/conntrack';
import { epCounterKey, sumPerCpuCounters, type Counter } from '../../src/wire/counters';
import { chunkCount, encodeEndpoint, type Endpoint } from '../../src/wire/endpoint';
import { decodeEvent, type DropEvent } from '../../src/wire/events';
import { encodeLocal, type Local } from '../../src/wire/local';
import { encodeCidrKey, encodePeerIdentKey, encodePortKey, encodeRule, encodeRuleKey } from '../../src/wire/tables';
import { native } from '../../src/datapath/native';
import { ACTION, TIER } from '../../src/compile/tables';
import type { Tier } from '../../src/model/rules';
import type { BpfObjectHandle, MapInfo } from '../../src/datapath/native-api';
import { objectPath } from './objects';

export const TC_ACT_OK = 0;
export const TC_ACT_SHOT = 2;
export const TC_ACT_REDIRECT = 7;
export const XDP_DROP = 1;
export const XDP_PASS = 2;

const BPF_MAP_TYPE_ARRAY = 2;
const BPF_MAP_TYPE_PERCPU_ARRAY = 6;
const BPF_MAP_TYPE_RINGBUF = 27;
const SKB_CTX_SIZE = 192; // sizeof(struct __sk_buff)
const SKB_MARK_OFF = 8;
const SKB_INGRESS_IFINDEX_OFF = 36;
const SKB_IFINDEX_OFF = 40;

export type TestPeer = { identity: number } | { cidr: string; except?: string[] };
export interface TestPort {
  proto: number;
  port?: number;
  endPort?: number;
}
export interface TestRule {
  action: 'allow' | 'deny' | 'pass';
  tier: Tier;
  peers: TestPeer[];
  /** null / absent = every protocol and port. */
  ports?: TestPort[] | null;
  policyId?: number;
  ruleId?: number;
}

/** A prefix over a bit string: the bits are `value`'s top `len` of `width`. */
interface Prefix {
  bytes: Buffer;
  len: number;
}

function prefixContains(outer: Prefix, inner: Prefix): boolean {
  if (outer.len > inner.len) return false;
  for (let bit = 0; bit < outer.len; bit++) {
    const m = 0x80 >> (bit % 8);
    if ((outer.bytes[bit >> 3] & m) !== (inner.bytes[bit >> 3] & m)) return false;
  }
  return true;
}

function cidrPrefix(cidr: string): Prefix {
  const p = mappedPrefix(toCidr(cidr));
  return { bytes: p.addr, len: p.bits };
}

/** Port-trie prefixes of a spec: 24 bits = protocol (8) + port (16). */
function portPrefixes(p: TestPort | null): { proto?: number; port?: number; portBits?: number; prefix: Prefix }[] {
  const mk = (proto: number, port: number, portBits: number) => {
    const bytes = Buffer.from([proto, port >> 8, port & 0xff]);
    return { proto, port, portBits, prefix: { bytes, len: 8 + portBits } };
  };
  if (p === null) return [{ prefix: { bytes: Buffer.alloc(3), len: 0 } }];
  if (p.port === undefined) return [mk(p.proto, 0, 0)];
  return portRangePrefixes(p.port, p.endPort ?? p.port).map((r) => mk(p.proto, r.port, r.portBits));
}

/** An endpoint whose chunk counts may be left to Classifier.endpoint(), and whose counter
 *  slot is the harness's: one per endpoint id, as the reconciler gives them. */
export type TestEndpoint = Omit<Endpoint, 'ingressChunks' | 'egressChunks' | 'statsSlot'> &
  Partial<Pick<Endpoint, 'ingressChunks' | 'egressChunks'>>;

export interface RunResult {
  verdict: number;
  mark: number;
}

export interface RunOptions {
  mark?: number;
  /** skb->ingress_ifindex: the interface the packet entered the node through. */
  ingressIfindex?: number;
}

export class Classifier {
  readonly obj: BpfObjectHandle;
  private readonly maps: Map<string, MapInfo>;
  private readonly progs: Map<string, number>;
  readonly cpus = native.possibleCpus();
  readonly events: DropEvent[] = [];
  private ring?: { close(): void };
  /** Chunks of the tables table() wrote. */
  private readonly tableChunks = new Map<number, number>();
  private readonly slots = new Map<number, number>();

  constructor(objectName: 'netfence' | 'prefilter' = 'netfence') {
    this.obj = native.openObject(objectPath(objectName), {
      maxEntries:
        objectName === 'prefilter'
          ? {}
          : {
              nf_ct: 4096,
              nf_rule_stats: 4096,
              nf_ident_exact: 1024,
              nf_peer_ident: 1024,
              nf_rules: 4096,
              nf_ratelimit: 256,
              nf_endpoints: 256,
              nf_local_addrs: 256,
            },
    });
    this.maps = new Map(this.obj.maps().map((m) => [m.name, m]));
    this.progs = new Map(this.obj.programs().map((p) => [p.name, p.fd]));
  }

  map(name: string): MapInfo {
    const m = this.maps.get(name);
    if (!m) throw new Error(`find map ${name}: not in the object`);
    return m;
  }

  fd(name: string): number {
    return this.map(name).fd;
  }

  prog(name: string): number {
    const fd = this.progs.get(name);
    if (fd === undefined) throw new Error(`find program ${name}: not in the object`);
    return fd;
  }

  close(): void {
    this.ring?.close();
    this.obj.close();
  }

  /** Empty every map (arrays are zeroed) and forget collected events. */
  reset(): void {
    for (const m of this.maps.values()) {
      if (m.type === BPF_MAP_TYPE_RINGBUF || !m.name.startsWith('nf_')) continue;
      if (m.type === BPF_MAP_TYPE_ARRAY || m.type === BPF_MAP_TYPE_PERCPU_ARRAY) {
        const size = m.type === BPF_MAP_TYPE_PERCPU_ARRAY ? Math.ceil(m.valueSize / 8) * 8 * this.cpus : m.valueSize;
        for (let i = 0; i < m.maxEntries; i++) native.mapUpdate(m.fd, encodeU32(i), Buffer.alloc(size));
        continue;
      }
      for (const k of native.mapKeys(m.fd)) native.mapDelete(m.fd, k);
    }
    this.events.length = 0;
    this.tableChunks.clear();
  }

  put(map: string, key: Buffer, value: Buffer): void {
    native.mapUpdate(this.fd(map), key, value);
  }

  /** An endpoint, with the compiler's node-wide flags `nodeFlags` added: by default a node
   *  where some local pod has an egress table (deferred source checks on) and service CIDRs
   *  are looked up, as most tests build one. Chunk counts not given are those of the
   *  tables table() wrote (one for a table it has not written yet). */
  endpoint(ifindex: number, ep: TestEndpoint, nodeFlags: number = NfEpFlag.SRC_CHECK | NfEpFlag.SVC_CIDRS): void {
    const chunks = (table: number) => (table === 0 ? 0 : (this.tableChunks.get(table) ?? 1));
    this.put(
      'nf_endpoints',
      encodeU32(ifindex),
      encodeEndpoint({
        ingressChunks: chunks(ep.ingressTable),
        egressChunks: chunks(ep.egressTable),
        ...ep,
        flags: ep.flags | nodeFlags,
        statsSlot: this.statsSlot(ep.id),
      }),
    );
  }

  /** The counter slot of endpoint id `id` (a new one the first time). */
  private statsSlot(id: number): number {
    let slot = this.slots.get(id);
    if (slot === undefined) this.slots.set(id, (slot = this.slots.size + 1));
    return slot;
  }

  identity(ip: string, id: number): void {
    this.put('nf_ident_exact', encodeAddr(ip), encodeU32(id));
  }

  identityPrefix(cidr: string, id: number): void {
    this.put('nf_ident_lpm', encodeAddrLpmKey(cidr), encodeU32(id));
  }

  local(ip: string, ifindex: number, kind: number, macs: Pick<Local, 'podMac' | 'hostMac'> = {}): void {
    this.put('nf_local_addrs', encodeAddr(ip), encodeLocal({ ifindex, kind, ...macs }));
  }

  svcCidr(cidr: string): void {
    this.put('nf_svc_cidrs', encodeAddrLpmKey(cidr), encodeU8(1));
  }

  config(c: Partial<Config>): void {
    const full: Config = { ...PLAIN_CONFIG, ...c };
    this.put('nf_config', encodeU32(0), encodeConfig(full));
  }

  /** Write a table: rules in precedence order (tiers must not go backwards). Past
   *  NF_CHUNK_RULES rules it spans chunks: each chunk's bitmaps cover its own rules. */
  table(table: number, rules: TestRule[]): void {
    rules.forEach((r, i) => {
      if (i > 0 && TIER[r.tier] < TIER[rules[i - 1].tier])
        throw new Error(`build table ${table}: rule ${i} tier goes backwards`);
      let end = i + 1;
      while (end < rules.length && rules[end].tier === r.tier) end++;
      this.put(
        'nf_rules',
        encodeRuleKey(table, i),
        encodeRule({
          action: ACTION[r.action],
          tier: TIER[r.tier],
          tierEnd: end,
          policyId: r.policyId ?? 100 + i,
          ruleId: r.ruleId ?? i,
        }),
      );
    });
    const chunks = chunkCount(rules.length);
    for (let chunk = 0; chunk < chunks; chunk++) {
      const first = chunk * NF_CHUNK_RULES;
      this.chunk(
        table,
        chunk,
        rules.slice(first, first + NF_CHUNK_RULES).map((rule, i) => ({ rule, index: first + i })),
      );
    }
    this.tableChunks.set(table, chunks);
  }

  private chunk(table: number, chunk: number, rules: { rule: TestRule; index: number }[]): void {
    const identBits = new Map<number, number[]>();
    const cidrs: { prefix: Prefix; cidr: string }[] = [];
    const ports: ReturnType<typeof portPrefixes> = [];
    for (const { rule: r, index } of rules) {
      for (const p of r.peers) {
        if ('identity' in p) identBits.set(p.identity, [...(identBits.get(p.identity) ?? []), index]);
        else for (const c of [p.cidr, ...(p.except ?? [])]) cidrs.push({ prefix: cidrPrefix(c), cidr: c });
      }
      for (const p of r.ports ?? [null]) ports.push(...portPrefixes(p));
    }
    for (const [id, idx] of identBits)
      this.put('nf_peer_ident', encodePeerIdentKey(table, id, chunk), bitmapFrom(idx, chunk));

    const cidrRules = (prefix: Prefix): number[] =>
      rules.flatMap(({ rule: r, index }) =>
        r.peers.some(
          (p) =>
            'cidr' in p &&
            prefixContains(cidrPrefix(p.cidr), prefix) &&
            !(p.except ?? []).some((e) => prefixContains(cidrPrefix(e), prefix)),
        )
          ? [index]
          : [],
      );
    for (const c of cidrs)
      this.put('nf_peer_cidr', encodeCidrKey(table, c.cidr, chunk), bitmapFrom(cidrRules(c.prefix), chunk));

    const portRules = (prefix: Prefix): number[] =>
      rules.flatMap(({ rule: r, index }) =>
        (r.ports ?? [null]).some((p) => portPrefixes(p).some((q) => prefixContains(q.prefix, prefix))) ? [index] : [],
      );
    for (const p of ports)
      this.put('nf_ports', encodePortKey({ table, chunk, ...p }), bitmapFrom(portRules(p.prefix), chunk));
  }

  /** Run a frame through nf_tc_ingress / nf_tc_egress (skb on loopback, ifindex 1). */
  run(hook: 'ingress' | 'egress', frame: Buffer, opts: RunOptions = {}): RunResult {
    const { verdict, mark } = this.runFrame(hook, frame, opts);
    return { verdict, mark };
  }

  /** run(), with the frame as the program left it. Loopback's address is all zeros: a
   *  frame to 00:00:00:00:00:00 is addressed to the node (PACKET_HOST), others are not. */
  runFrame(hook: 'ingress' | 'egress', frame: Buffer, opts: RunOptions = {}): RunResult & { frame: Buffer } {
    const ctx = Buffer.alloc(SKB_CTX_SIZE);
    ctx.writeUInt32LE(opts.mark ?? 0, SKB_MARK_OFF);
    ctx.writeUInt32LE(opts.ingressIfindex ?? 0, SKB_INGRESS_IFINDEX_OFF);
    ctx.writeUInt32LE(0, SKB_IFINDEX_OFF);
    const r = native.progTestRun(this.prog(hook === 'ingress' ? 'nf_tc_ingress' : 'nf_tc_egress'), {
      data: frame,
      ctx,
      ctxOutSize: SKB_CTX_SIZE,
    });
    return { verdict: r.retval, mark: r.ctx ? r.ctx.readUInt32LE(SKB_MARK_OFF) : -1, frame: r.data };
  }

  /** Run an XDP program (prefilter object). */
  runXdp(frame: Buffer): number {
    return native.progTestRun(this.prog('nf_xdp_prefilter'), { data: frame }).retval;
  }

  ruleStats(table: number, index: number): Counter {
    const v = native.mapLookup(this.fd('nf_rule_stats'), encodeRuleKey(table, index));
    return v ? sumPerCpuCounters(v, this.cpus) : { packets: 0n, bytes: 0n };
  }

  /** nf_ep_counters of an endpoint id, policy direction (NfDir) and verdict (NfEpVerdict). */
  epStats(epId: number, dir: number, verdict: number): Counter {
    const v = native.mapLookup(this.fd('nf_ep_counters'), epCounterKey(this.statsSlot(epId), dir, verdict));
    return v ? sumPerCpuCounters(v, this.cpus) : { packets: 0n, bytes: 0n };
  }

  reasonStats(reason: number, map = 'nf_reason_stats'): Counter {
    const v = native.mapLookup(this.fd(map), encodeU32(reason));
    if (!v) throw new Error(`read ${map}[${NF_REASON_DESC[reason]}]: missing`);
    return sumPerCpuCounters(v, this.cpus);
  }

  conntrack(): { key: CtKey; val: CtVal }[] {
    const fd = this.fd('nf_ct');
    return native.mapKeys(fd).map((k) => decodeCt(k, native.mapLookup(fd, k)!));
  }

  /** Overwrite a conntrack entry (e.g. move its deadline into the past). */
  putConntrack(key: CtKey, val: CtVal): void {
    const e = encodeCt(key, val);
    this.put('nf_ct', e.key, e.value);
  }

  /** Start collecting drop events from nf_events. */
  watchEvents(): void {
    this.ring ??= native.ringBufferOpen(this.fd('nf_events'), (s) => this.events.push(decodeEvent(s)));
  }

  /** Wait until at least `n` events arrived (or `ms` passed), then take them all. */
  async takeEvents(n: number, ms = 1000): Promise<DropEvent[]> {
    const until = Date.now() + ms;
    while (this.events.length < n && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    return this.events.splice(0);
  }
}

export { native };
