// Shared by the reconcile tests: synthetic desired maps, an in-memory MapIO that records
// every operation (and counts reads), and a tc attacher double with injected failures.
import { MAP_WRITE_ORDER } from '../../src/reconcile/order';
import type { CompiledEndpoint, CompileResult, DesiredMaps, MapContent } from '../../src/compile/output';
import type { PolicyMapName } from '../../src/wire/maps';
import { hooksFor } from '../../src/compile/hooks';
import { NO_POLICY_ID } from '../../src/compile/synthetic';
import { bitmapFrom } from '../../src/compile/bitmap';
import { NF_CHUNK_RULES, NfAction, NfEpFlag, NfTier, IPPROTO } from '../../src/wire/abi';
import { encodeAddr } from '../../src/wire/addr';
import { encodeU32, keyHex } from '../../src/wire/bytes';
import { chunkCount, encodeEndpoint } from '../../src/wire/endpoint';
import { encodeCidrKey, encodePortKey, encodeRule, encodeRuleKey } from '../../src/wire/tables';
import type { TcDirection } from '../../src/datapath/native-api';
import { MapOpError, MemoryMapIO } from '../../src/reconcile/mapio';
import type { Attacher, EndpointRef } from '../../src/datapath/attach';

export interface EpSpec {
  ifindex: number;
  ingress: number;
  egress: number;
  revision?: number;
  ip?: string;
  /** NfEpFlag bits (default: a plain pod endpoint) */
  flags?: number;
  /** Its counter slot (default: its ifindex). */
  slot?: number;
  /** Directions the compiler refused (their table is then Spec.isolation, as compile does). */
  refused?: ('ingress' | 'egress')[];
}

export interface Spec {
  /** table id -> number of rules */
  tables: Record<number, number>;
  endpoints: EpSpec[];
  /** The isolation table id of every endpoint direction with a table (a one-rule deny all). */
  isolation?: number;
}

function put(maps: DesiredMaps, m: PolicyMapName, key: Buffer, value: Buffer): void {
  maps[m].set(keyHex(key), { key, value });
}

const emptyMaps = (): DesiredMaps => Object.fromEntries(MAP_WRITE_ORDER.map((m) => [m, new Map()])) as DesiredMaps;

export function build(spec: Spec): {
  maps: DesiredMaps;
  endpoints: CompiledEndpoint[];
  isolation: CompileResult['isolation'];
} {
  const maps = emptyMaps();
  const isolation = emptyMaps();
  const iso = spec.isolation;
  if (iso !== undefined) {
    const used = spec.endpoints.some((e) => e.ingress === iso || e.egress === iso);
    for (const m of used ? [isolation, maps] : [isolation]) {
      put(
        m,
        'nf_rules',
        encodeRuleKey(iso, 0),
        encodeRule({ action: NfAction.DENY, tier: NfTier.NETPOL, tierEnd: 1, policyId: NO_POLICY_ID, ruleId: 0 }),
      );
      put(m, 'nf_ports', encodePortKey({ table: iso }), bitmapFrom([0]));
      put(m, 'nf_peer_cidr', encodeCidrKey(iso, '::/0'), bitmapFrom([0]));
    }
  }
  for (const [t, n] of Object.entries(spec.tables).map(([t, n]) => [Number(t), n])) {
    for (let i = 0; i < n; i++) {
      put(
        maps,
        'nf_rules',
        encodeRuleKey(t, i),
        encodeRule({ action: NfAction.ALLOW, tier: NfTier.NETPOL, tierEnd: n, policyId: t, ruleId: i }),
      );
    }
    for (let chunk = 0; chunk < chunkCount(n); chunk++) {
      const first = chunk * NF_CHUNK_RULES;
      const all = bitmapFrom(
        Array.from({ length: Math.min(n - first, NF_CHUNK_RULES) }, (_, i) => first + i),
        chunk,
      );
      put(maps, 'nf_ports', encodePortKey({ table: t, chunk, proto: IPPROTO.TCP, port: 80 }), all);
      put(maps, 'nf_peer_cidr', encodeCidrKey(t, '10.0.0.0/8', chunk), all);
    }
  }
  const chunks = (table: number) => chunkCount(spec.tables[table] ?? 0);
  const endpoints = spec.endpoints.map((e) => {
    const entry = {
      id: e.ifindex + 1000,
      ingressTable: e.ingress,
      egressTable: e.egress,
      ingressChunks: chunks(e.ingress),
      egressChunks: chunks(e.egress),
      flags: e.flags ?? NfEpFlag.POD,
      revision: e.revision ?? 1,
      statsSlot: e.slot ?? e.ifindex,
    };
    const ep: CompiledEndpoint = {
      ifname: `veth${e.ifindex}`,
      ifindex: e.ifindex,
      kind: 'pod',
      pod: `ns/p${e.ifindex}`,
      ...entry,
      hooks: hooksFor(entry),
      tunnel: (entry.flags & NfEpFlag.TUNNEL) !== 0,
      ...(iso !== undefined && { isolationTables: { ingress: e.ingress && iso, egress: e.egress && iso } }),
      ...(e.refused && { refused: { directions: e.refused, error: `${e.refused.join(', ')} refused: injected` } }),
    };
    put(maps, 'nf_endpoints', encodeU32(e.ifindex), encodeEndpoint(entry));
    put(maps, 'nf_ident_exact', encodeAddr(e.ip ?? `10.0.0.${e.ifindex}`), encodeU32(7));
    return ep;
  });
  return {
    maps,
    endpoints,
    isolation: {
      nf_rules: isolation.nf_rules,
      nf_ports: isolation.nf_ports,
      nf_peer_cidr: isolation.nf_peer_cidr,
      nf_peer_ident: isolation.nf_peer_ident,
    },
  };
}

export type Op = { op: 'update' | 'delete'; map: PolicyMapName; key: string };

export class RecordingIO extends MemoryMapIO {
  ops: Op[] = [];
  batches: PolicyMapName[] = [];
  /** keys() and lookup() calls: each is a syscall (or a walk of them) on kernel maps. */
  reads = 0;
  failUpdate?: (map: PolicyMapName, key: Buffer) => boolean;
  override keys(map: PolicyMapName): Buffer[] {
    this.reads++;
    return super.keys(map);
  }
  override lookup(map: PolicyMapName, key: Buffer): Buffer | null {
    this.reads++;
    return super.lookup(map, key);
  }
  override update(map: PolicyMapName, key: Buffer, value: Buffer): void {
    if (this.failUpdate?.(map, key)) throw new MapOpError(`update ${map}: injected`, 'EIO');
    super.update(map, key, value);
    this.ops.push({ op: 'update', map, key: keyHex(key) });
  }
  override delete(map: PolicyMapName, key: Buffer): boolean {
    this.ops.push({ op: 'delete', map, key: keyHex(key) });
    return super.delete(map, key);
  }
  override updateBatch(map: PolicyMapName, keys: Buffer[], values: Buffer[]): void {
    this.batches.push(map);
    super.updateBatch(map, keys, values);
  }
  snapshot(): Record<string, string[]> {
    return Object.fromEntries(
      [...this.maps].map(([m, c]: [PolicyMapName, MapContent]) => [
        m,
        [...c.values()].map((e) => keyHex(e.key) + '=' + keyHex(e.value)).sort(),
      ]),
    );
  }
}

export class FakeAttacher implements Attacher {
  readonly hooks = new Set<string>();
  failAttach = new Set<string>();
  log: string[] = [];
  attached(ep: EndpointRef, dir: TcDirection): boolean {
    return this.hooks.has(`${ep.ifname}/${dir}`);
  }
  attach(ep: EndpointRef, dir: TcDirection): void {
    if (this.failAttach.has(`${ep.ifname}/${dir}`)) throw new Error(`attach ${ep.ifname} ${dir}: injected`);
    this.hooks.add(`${ep.ifname}/${dir}`);
    this.log.push(`attach ${ep.ifname}/${dir}`);
  }
  detach(ep: EndpointRef, dir: TcDirection): void {
    this.hooks.delete(`${ep.ifname}/${dir}`);
    this.log.push(`detach ${ep.ifname}/${dir}`);
  }
  list(): EndpointRef[] {
    const names = new Set([...this.hooks].map((h) => h.split('/')[0]));
    return [...names].map((ifname) => ({ ifname, ifindex: Number(ifname.slice(4)) }));
  }
}

export const rulesOf = (io: MemoryMapIO, table: number): number =>
  [...(io.maps.get('nf_rules')?.values() ?? [])].filter((e) => e.key.readUInt32LE(0) === table).length;
