// Private (unpinned) instances of the netfence object for the benchmarks: each
// configuration gets its own maps, filled by hand, so configurations can be measured
// side by side, interleaved, without touching anyone's pinned state.
import path from 'node:path';
import { NfEpFlag, NfLocalKind } from '../src/wire/abi';
import { encodeAddr } from '../src/wire/addr';
import { encodeU32 } from '../src/wire/bytes';
import { PLAIN_CONFIG, encodeConfig } from '../src/wire/config';
import { encodeEndpoint, type Endpoint } from '../src/wire/endpoint';
import { encodeLocal } from '../src/wire/local';
import type { DiscoveredEndpoint } from '../src/compile/endpoint';
import type { BpfObjectHandle, MapInfo, NativeAddon, ProgInfo } from '../src/datapath/native-api';
import type { Entries } from './policy';

export const REPO_ROOT = path.resolve(
  __dirname,
  path.basename(path.resolve(__dirname, '..')) === 'dist' ? '../..' : '..',
);
export const NETFENCE_OBJECT = path.join(REPO_ROOT, 'bpf', '.output', 'netfence.bpf.o');
export const EMPTY_OBJECT = path.join(REPO_ROOT, 'bench', '.output', 'empty.bpf.o');
export const CRR_BINARY = path.join(REPO_ROOT, 'bench', '.output', 'crr');

export interface BenchObject {
  obj: BpfObjectHandle;
  map(name: string): MapInfo;
  prog(name: string): ProgInfo;
  close(): void;
}

export function openBenchObject(
  addon: NativeAddon,
  file: string,
  maxEntries: Record<string, number> = {},
): BenchObject {
  const obj = addon.openObject(file, { maxEntries });
  const maps = new Map(obj.maps().map((m) => [m.name, m]));
  const progs = new Map(obj.programs().map((p) => [p.name, p]));
  return {
    obj,
    map(name) {
      const m = maps.get(name);
      if (!m) throw new Error(`open map ${name}: not in ${path.basename(file)}`);
      return m;
    },
    prog(name) {
      const p = progs.get(name);
      if (!p) throw new Error(`open program ${name}: not in ${path.basename(file)}`);
      return p;
    },
    close: () => obj.close(),
  };
}

const BATCH = 4096;

export function fillMaps(addon: NativeAddon, o: BenchObject, entries: Entries): void {
  for (const [name, list] of Object.entries(entries)) {
    const fd = o.map(name).fd;
    for (let i = 0; i < (list?.length ?? 0); i += BATCH) {
      const chunk = list!.slice(i, i + BATCH);
      addon.mapUpdateBatch(
        fd,
        chunk.map((e) => e.key),
        chunk.map((e) => e.value),
      );
    }
  }
}

/** nf_config for a benchmark: current layout, no tunnel, no drop events. */
export function writeConfig(addon: NativeAddon, o: BenchObject): void {
  addon.mapUpdate(o.map('nf_config').fd, encodeU32(0), encodeConfig(PLAIN_CONFIG));
}

/** A local pod's address and the MACs of its veth's two ends (as discovery finds them). */
export type VethPod = { ip: string } & NonNullable<DiscoveredEndpoint['veth']>;

/** A pod endpoint on `ifindex`; table 0 = not isolated in that direction. With `veth` it
 *  is a host veth delivered locally as the agent does by default (NF_EP_F_LOCAL_DELIVERY,
 *  its nf_local_addrs entry). Returns the entry written. */
export function writePodEndpoint(
  addon: NativeAddon,
  o: BenchObject,
  ifindex: number,
  id: number,
  ingressTable: number,
  veth?: VethPod,
): Endpoint {
  // buildPolicy's tables fit one chunk (MAX_CIDR_RULES + 2 rules)
  const ep: Endpoint = {
    id,
    ingressTable,
    egressTable: 0,
    ingressChunks: ingressTable === 0 ? 0 : 1,
    egressChunks: 0,
    flags: NfEpFlag.POD | (veth ? NfEpFlag.LOCAL_DELIVERY : 0),
    revision: 1,
    // a slot per endpoint, as the reconciler gives them (ids here are small and distinct)
    statsSlot: id,
  };
  addon.mapUpdate(o.map('nf_endpoints').fd, encodeU32(ifindex), encodeEndpoint(ep));
  if (veth) {
    const { ip, ...macs } = veth;
    addon.mapUpdate(
      o.map('nf_local_addrs').fd,
      encodeAddr(ip),
      encodeLocal({ ifindex, kind: NfLocalKind.POD, ...macs }),
    );
  }
  return ep;
}
