// Per-packet cost through the real program (BPF_PROG_TEST_RUN): nf_tc_egress, i.e.
// traffic to a pod checked against the pod's ingress table, for a series of CIDR
// counts and identity counts, against an empty tc program measured the same way.
//
//   established: a SYN to the allowed port repeated; the first run creates the
//                conntrack entry, every other run is a conntrack hit.
//   new:         a SYN to a port no allow rule covers; it is denied, so no entry is
//                ever created and every run is a conntrack miss plus the full lookup
//                (identity, CIDR trie, ports, rules) — the new-flow path minus the
//                conntrack insert.
// Test runs use the loopback device (ifindex 1) of the caller's netns, which is
// where the endpoint is keyed.
import type { NativeAddon } from '../src/datapath/native-api';
import { buildPacket } from '../src/trace/packet';
import { EMPTY_OBJECT, fillMaps, openBenchObject, writeConfig, writePodEndpoint, type BenchObject } from './datapath';
import { buildPolicy, identityAddress } from './policy';
import { countLabel } from './report';
import { median, ratio, runInterleaved } from './stats';
import type { PktCase, PktResults } from './types';

const LOOPBACK_IFINDEX = 1;
const TABLE = 7;
const ALLOWED_PORT = 80;
const DENIED_PORT = 81;
const POD = { 4: '10.244.0.10', 6: 'fd00:244::10' } as const;

export const CIDR_SERIES = [0, 100, 1000, 10000, 100000];
export const IDENTITY_SERIES = [10, 1000, 10000];

interface Config {
  name: string;
  cidrs: number;
  identities: number;
}

export function pktConfigs(): Config[] {
  const cfgs: Config[] = CIDR_SERIES.map((n) => ({
    name: `cidr_${countLabel(n)}`,
    cidrs: n,
    identities: IDENTITY_SERIES[0],
  }));
  for (const n of IDENTITY_SERIES.slice(1)) cfgs.push({ name: `ident_${countLabel(n)}`, cidrs: 0, identities: n });
  return cfgs;
}

function loadConfig(addon: NativeAddon, object: string, cfg: Config): BenchObject {
  const probes = [identityAddress(4, 0), identityAddress(6, 0)];
  const policy = buildPolicy({
    table: TABLE,
    cidrs: cfg.cidrs,
    families: [4, 6],
    identities: cfg.identities,
    probes,
    port: ALLOWED_PORT,
  });
  const slack = 1024;
  const o = openBenchObject(addon, object, {
    nf_peer_cidr: Math.max(16384, cfg.cidrs + slack),
    nf_ident_exact: Math.max(65536, 2 * cfg.identities + slack),
    nf_peer_ident: Math.max(65536, cfg.identities + slack),
  });
  try {
    fillMaps(addon, o, policy.entries);
    writeConfig(addon, o);
    writePodEndpoint(addon, o, LOOPBACK_IFINDEX, 1, TABLE);
  } catch (e) {
    o.close();
    throw new Error(`load per-packet config ${cfg.name}: ${(e as Error).message}`);
  }
  return o;
}

function packet(family: 4 | 6, flow: PktCase['flow']): Buffer {
  return buildPacket({
    src: identityAddress(family, 0),
    dst: POD[family],
    protocol: 'TCP',
    sport: 40000,
    dport: flow === 'established' ? ALLOWED_PORT : DENIED_PORT,
  });
}

export interface PktOptions {
  /** The netfence object (bpf/.output/netfence.bpf.o). */
  object: string;
  rounds: number;
  repeat: number;
  log: (msg: string) => void;
}

export async function runPkt(addon: NativeAddon, opts: PktOptions): Promise<PktResults> {
  const configs = pktConfigs();
  const loaded = new Map<string, BenchObject>();
  const empty = openBenchObject(addon, EMPTY_OBJECT);
  try {
    for (const cfg of configs) {
      opts.log(`pkt: loading ${cfg.name} (${cfg.cidrs} CIDRs, ${cfg.identities} identities)`);
      loaded.set(cfg.name, loadConfig(addon, opts.object, cfg));
    }
    return await measure(addon, opts, configs, loaded, empty);
  } finally {
    for (const o of loaded.values()) o.close();
    empty.close();
  }
}

async function measure(
  addon: NativeAddon,
  opts: PktOptions,
  configs: Config[],
  loaded: Map<string, BenchObject>,
  empty: BenchObject,
): Promise<PktResults> {
  const emptyFd = empty.prog('bench_empty').fd;
  const variants: { name: string; fd: number; family: 4 | 6; flow: PktCase['flow']; expect: number }[] = [];
  for (const family of [4, 6] as const) {
    for (const flow of ['new', 'established'] as const) {
      variants.push({ name: `empty/v${family}/${flow}`, fd: emptyFd, family, flow, expect: 0 });
      for (const cfg of configs) {
        const fd = loaded.get(cfg.name)!.prog('nf_tc_egress').fd;
        variants.push({ name: `${cfg.name}/v${family}/${flow}`, fd, family, flow, expect: flow === 'new' ? 2 : 0 });
      }
    }
  }
  const packets = new Map<string, Buffer>();
  for (const v of variants) packets.set(`${v.family}/${v.flow}`, packet(v.family, v.flow));

  const samples = await runInterleaved(variants, opts.rounds, (v) => {
    const r = addon.progTestRun(v.fd, { data: packets.get(`${v.family}/${v.flow}`)!, repeat: opts.repeat });
    // TC_ACT_OK (0) for allowed, TC_ACT_SHOT (2) for the denied new-flow probe:
    // a different verdict means the benchmark is not measuring the path it claims.
    if (r.retval !== v.expect) throw new Error(`run ${v.name}: verdict ${r.retval}, expected ${v.expect}`);
    return r.duration;
  });

  const emptyNs: Record<string, number> = {};
  for (const family of [4, 6])
    for (const flow of ['new', 'established'])
      emptyNs[`v${family}/${flow}`] = median(samples[`empty/v${family}/${flow}`]);
  const cases: PktCase[] = [];
  for (const v of variants) {
    if (v.fd === emptyFd) continue;
    const cfg = configs.find((c) => v.name.startsWith(`${c.name}/`))!;
    const ns = median(samples[v.name]);
    cases.push({
      config: cfg.name,
      cidrs: cfg.cidrs,
      identities: cfg.identities,
      family: v.family,
      flow: v.flow,
      ns,
      ratioToEmpty: ratio(ns, emptyNs[`v${v.family}/${v.flow}`]),
      samples: samples[v.name],
    });
  }
  opts.log(`pkt: done (${variants.length} variants x ${opts.rounds} rounds)`);
  return { repeat: opts.repeat, rounds: opts.rounds, emptyNs, cases };
}
