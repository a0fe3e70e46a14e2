// The bpf trace engine: the real compiled program on real (private, unpinned) maps
// through BPF_PROG_TEST_RUN. Every node of the snapshot is compiled and the union of
// the tables loaded once; a probe then keys the source endpoint at ifindex 1 (where
// test runs put the skb) and runs the hook that sees traffic leaving it, then the
// destination endpoint and the hook that sees traffic reaching it. The deciding rule
// is the one whose per-rule counter moved.
//
// Conntrack state of the reference's packets: an established packet finds its own flow's
// entry, a related one (an ICMP error quoting a TCP segment the other side sent) the
// quoted flow's entry, written at the endpoint's revision before the run. Only where
// the reference lets such state pass: pods, and hosts keeping established flows
// (NF_EP_F_KEEP_ESTABLISHED, from privileged.established); elsewhere the packet runs
// as a new one. Allowed with no rule evaluated = passed through conntrack.
import { compile } from '../compile';
import type { CompiledEndpoint, CompiledRuleInfo } from '../compile/output';
import type { PolicyMapName } from '../wire/maps';
import { NF_CT_RULE_DEFAULT, NF_RULE_DEFAULT, NfDir, NfEpFlag, NfLocalKind } from '../wire/abi';
import { encodeU32, keyHex } from '../wire/bytes';
import { encodeCt, type CtKey } from '../wire/conntrack';
import { decodeEndpoint } from '../wire/endpoint';
import { decodeLocal } from '../wire/local';
import { decodeRuleKey } from '../wire/tables';
import { DEFAULT_OBJECT } from '../datapath/loader';
import type { BpfObjectHandle, NativeAddon, ProgInfo } from '../datapath/native-api';
import { ESTABLISHED_RULE, RELATED_RULE } from '../model/rules';
import type { Snapshot } from '../model/types';
import { DEFAULT_ALLOW, type DirectionVerdict, type Packet, type Verdict } from '../reference/evaluate';
import { endpointByIp, sameEndpoint, type Endpoint } from '../selectors/resolve';
import { nodeNames, synthesizeEndpoints } from './endpoints';
import { PROTO_NUMBER } from '../compile/ruleset';
import { buildPacket, packet } from './packet';

const TC_ACT_SHOT = 2;
const TEST_RUN_IFINDEX = 1;
const SOURCE_PORT = 40000;
/** The destination port of the segment a related ICMP error quotes. */
const RELATED_PORT = 443;
/** The id buildPacket gives ICMP echo requests: an echo flow's conntrack source port. */
const ECHO_ID = 1;

// Maps a trace loads. Not nf_svc_cidrs (a trace targets the backend, no deferral) and
// no pod entries in nf_local_addrs: each side is evaluated on its own, as the reference
// does, so the destination hook must not re-run the source's deferred egress check.
const TABLE_MAPS: PolicyMapName[] = [
  'nf_rules',
  'nf_ports',
  'nf_peer_cidr',
  'nf_peer_ident',
  'nf_ident_lpm',
  'nf_ident_exact',
  'nf_local_addrs',
];

interface Loaded {
  snapshot: Snapshot;
  /** Compiled endpoint and its nf_endpoints value, by endpointKey(). */
  endpoints: Map<string, { ep: CompiledEndpoint; value: Buffer }>;
  rules: Map<string, CompiledRuleInfo>;
}

function endpointKey(ep: Endpoint, network: string | undefined): string {
  return ep.kind === 'node'
    ? `host/${ep.node.name}`
    : `${network ? 'secondary' : 'pod'}/${ep.pod.namespace}/${ep.pod.name}/${network ?? ''}`;
}

function compiledKey(ep: CompiledEndpoint): string {
  return ep.kind === 'host' ? `host/${ep.node}` : `${ep.kind}/${ep.pod}/${ep.network ?? ''}`;
}

export class BpfEngine {
  private readonly fds: Record<string, number>;
  private readonly ingress: ProgInfo;
  private readonly egress: ProgInfo;
  private readonly cpus: number;
  private written = new Map<PolicyMapName, Buffer[]>();
  private loaded?: Loaded;

  private constructor(
    private readonly addon: NativeAddon,
    private readonly obj: BpfObjectHandle,
  ) {
    this.fds = Object.fromEntries(obj.maps().map((m) => [m.name, m.fd]));
    const progs = new Map(obj.programs().map((p) => [p.name, p]));
    const prog = (name: string) => {
      const p = progs.get(name);
      if (!p) throw new Error(`open trace engine: program ${name} missing from the object`);
      return p;
    };
    this.ingress = prog('nf_tc_ingress');
    this.egress = prog('nf_tc_egress');
    this.cpus = addon.possibleCpus();
  }

  /** Load the datapath object with private maps (no pinning: nothing outlives the engine).
   *  Conntrack and counters are emptied around every run: small maps keep that cheap
   *  (walking an empty hash map costs its bucket count). */
  static open(addon: NativeAddon, objectPath: string = DEFAULT_OBJECT): BpfEngine {
    return new BpfEngine(addon, addon.openObject(objectPath, { maxEntries: { nf_ct: 256, nf_rule_stats: 64 } }));
  }

  close(): void {
    this.obj.close();
  }

  private fd(map: string): number {
    const fd = this.fds[map];
    if (fd === undefined) throw new Error(`trace: map ${map} missing from the object`);
    return fd;
  }

  private clear(map: string, keys?: Buffer[]): void {
    const fd = this.fd(map);
    for (const k of keys ?? this.addon.mapKeys(fd)) this.addon.mapDelete(fd, k);
  }

  /** Compile every node of `snapshot` and replace the engine's map contents. Returns compile errors. */
  load(snapshot: Snapshot): string[] {
    const errors: string[] = [];
    const merged = new Map<PolicyMapName, Map<string, { key: Buffer; value: Buffer }>>(
      TABLE_MAPS.map((m) => [m, new Map()]),
    );
    const endpoints: Loaded['endpoints'] = new Map();
    const rules = new Map<string, CompiledRuleInfo>();
    for (const node of nodeNames(snapshot)) {
      const r = compile(snapshot, node, synthesizeEndpoints(snapshot, node));
      errors.push(...r.errors.filter((e) => !errors.includes(e)));
      for (const map of TABLE_MAPS) {
        for (const [hex, entry] of r.maps[map]) {
          if (map === 'nf_local_addrs' && decodeLocal(entry.value).kind !== NfLocalKind.NODE) continue;
          const prev = merged.get(map)!.get(hex);
          if (prev && !prev.value.equals(entry.value))
            throw new Error(`trace: ${map} entry ${hex} differs between node compiles`);
          merged.get(map)!.set(hex, entry);
        }
      }
      for (const ep of r.endpoints)
        endpoints.set(compiledKey(ep), { ep, value: r.maps.nf_endpoints.get(keyHex(encodeU32(ep.ifindex)))!.value });
      for (const info of r.rules) rules.set(`${info.table}/${info.index}`, info);
    }
    for (const [map, keys] of this.written) this.clear(map, keys);
    this.written.clear();
    for (const [map, entries] of merged) {
      const fd = this.fd(map);
      for (const { key, value } of entries.values()) this.addon.mapUpdate(fd, key, value);
      this.written.set(
        map,
        [...entries.values()].map((e) => e.key),
      );
    }
    this.loaded = { snapshot, endpoints, rules };
    return errors;
  }

  /** One direction at one endpoint: key it at ifindex 1, write the conntrack entry `ct`
   *  (if any), run the hook, read the verdict. */
  private run(value: Buffer, prog: ProgInfo, frame: Buffer, ct?: { key: CtKey; rule: string }): DirectionVerdict {
    this.addon.mapUpdate(this.fd('nf_endpoints'), encodeU32(TEST_RUN_IFINDEX), value);
    this.clear('nf_ct');
    this.clear('nf_rule_stats');
    if (ct) {
      const val = {
        lastSeenNs: 0n,
        revision: decodeEndpoint(value).revision,
        rule: NF_CT_RULE_DEFAULT,
        flags: 0,
        expiresNs: 0n,
      };
      const e = encodeCt(ct.key, val);
      this.addon.mapUpdate(this.fd('nf_ct'), e.key, e.value);
    }
    const { retval } = this.addon.progTestRun(prog.fd, { data: frame });
    const verdict = retval === TC_ACT_SHOT ? 'deny' : 'allow';
    const moved = this.addon.mapKeys(this.fd('nf_rule_stats')).map(decodeRuleKey);
    if (moved.length > 1) throw new Error(`trace: ${moved.length} rule counters moved for one packet`);
    if (ct && moved.length === 0 && verdict === 'allow') return { verdict, tier: 'system', rule: ct.rule };
    if (moved.length === 0 || moved[0].index === NF_RULE_DEFAULT) return { ...DEFAULT_ALLOW, verdict };
    const info = this.loaded!.rules.get(`${moved[0].table}/${moved[0].index}`);
    if (!info) throw new Error(`trace: counter of unknown rule ${moved[0].table}/${moved[0].index}`);
    return { verdict, tier: info.tier, ...(info.policy && { policy: info.policy }), rule: info.rule };
  }

  private endpoint(ep: Endpoint, network: string | undefined): { ep: CompiledEndpoint; value: Buffer } {
    const key = endpointKey(ep, network);
    const compiled = this.loaded!.endpoints.get(key);
    if (!compiled) throw new Error(`trace: no compiled endpoint for ${key} (not on a node, or refused by compile)`);
    return compiled;
  }

  evaluate(pkt: Packet): Verdict {
    if (!this.loaded) throw new Error('trace: no snapshot loaded');
    const s = this.loaded.snapshot;
    const frame = pkt.related
      ? relatedFrame(pkt)
      : buildPacket({ src: pkt.src, dst: pkt.dst, protocol: pkt.protocol, sport: SOURCE_PORT, dport: pkt.dstPort });
    const src = endpointByIp(s, pkt.src, pkt.network);
    const dst = endpointByIp(s, pkt.dst, pkt.network);
    // Traffic of an endpoint to itself never leaves its namespace: no hook sees it.
    const self = src !== undefined && dst !== undefined && sameEndpoint(src, dst);
    const side = (ep: Endpoint | undefined, leaving: boolean): DirectionVerdict => {
      if (!ep || self) return DEFAULT_ALLOW;
      const c = this.endpoint(ep, pkt.network);
      // Pod hooks: tc ingress sees what the pod sends; host hooks: tc egress sees what the node sends.
      const prog = (c.ep.kind === 'host') === leaving ? this.egress : this.ingress;
      const { flags, id } = decodeEndpoint(c.value);
      const tracked = c.ep.kind !== 'host' || (flags & NfEpFlag.KEEP_ESTABLISHED) !== 0;
      return this.run(c.value, prog, frame, tracked ? conntrackOf(pkt, id, leaving) : undefined);
    };
    const egress = side(src, true);
    const ingress = side(dst, false);
    return { verdict: egress.verdict === 'allow' && ingress.verdict === 'allow' ? 'allow' : 'deny', egress, ingress };
  }
}

/** An ICMP/ICMPv6 error from pkt.src to pkt.dst (fragmentation needed / packet too big)
 *  quoting a TCP segment pkt.dst sent to pkt.src. */
function relatedFrame(pkt: Packet): Buffer {
  const quoted = buildPacket({
    src: pkt.dst,
    dst: pkt.src,
    protocol: 'TCP',
    sport: SOURCE_PORT,
    dport: RELATED_PORT,
  }).subarray(14);
  const l4 =
    pkt.protocol === 'ICMP'
      ? { proto: 'icmp' as const, type: 3, code: 4, seq: 1400 }
      : { proto: 'icmpv6' as const, type: 2, code: 0, seq: 1400 };
  return packet({ src: pkt.src, dst: pkt.dst, l4, payload: Buffer.from(quoted) });
}

/** The conntrack entry an established or related packet finds at endpoint `epId` on the
 *  side the packet is `leaving` (egress) or reaching (ingress); undefined for a new one. */
function conntrackOf(pkt: Packet, epId: number, leaving: boolean): { key: CtKey; rule: string } | undefined {
  const dir = leaving ? NfDir.EGRESS : NfDir.INGRESS;
  if (pkt.related) {
    // the quoted segment went pkt.dst -> pkt.src: that flow, seen from this side
    const key = {
      epId,
      dir: dir ^ 1,
      proto: PROTO_NUMBER.TCP,
      saddr: pkt.dst,
      daddr: pkt.src,
      sport: SOURCE_PORT,
      dport: RELATED_PORT,
    };
    return { key, rule: RELATED_RULE };
  }
  if (!pkt.established) return undefined;
  const icmp = pkt.protocol === 'ICMP' || pkt.protocol === 'ICMPv6';
  const ports = icmp ? { sport: ECHO_ID, dport: 0 } : { sport: SOURCE_PORT, dport: pkt.dstPort };
  return {
    key: { epId, dir, proto: PROTO_NUMBER[pkt.protocol], saddr: pkt.src, daddr: pkt.dst, ...ports },
    rule: ESTABLISHED_RULE,
  };
}
