// nf_local: what a local address (nf_local_addrs, keyed by nf_addr) is, and for a pod on a
// local-delivery veth, the MACs of a frame to it.
import { r32, w32 } from './bytes';
import { LAYOUT, MAC_BYTES, alloc, checkSize } from './layout';

export interface Local {
  ifindex: number;
  kind: number;
  /** Local delivery: the pod interface's MAC and its host veth's ("aa:bb:..."); absent = zero. */
  podMac?: string;
  hostMac?: string;
}

const ZERO_MAC = '00:00:00:00:00:00';

function encodeMac(mac: string, b: Buffer, off: number): void {
  const bytes = mac.split(':');
  if (bytes.length !== MAC_BYTES || bytes.some((x) => !/^[0-9a-fA-F]{2}$/.test(x)))
    throw new Error(`encode MAC "${mac}": not six hex bytes`);
  bytes.forEach((x, i) => (b[off + i] = parseInt(x, 16)));
}

export function decodeMac(b: Buffer, off: number): string {
  return [...b.subarray(off, off + MAC_BYTES)].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

const F = LAYOUT.nf_local.fields;

export function encodeLocal(l: Local): Buffer {
  const b = alloc('nf_local');
  w32(b, F.ifindex, l.ifindex);
  w32(b, F.kind, l.kind);
  encodeMac(l.podMac ?? ZERO_MAC, b, F.pod_mac);
  encodeMac(l.hostMac ?? ZERO_MAC, b, F.host_mac);
  return b;
}

export function decodeLocal(b: Buffer): Local {
  checkSize('nf_local', b);
  const l: Local = { ifindex: r32(b, F.ifindex), kind: r32(b, F.kind) };
  const podMac = decodeMac(b, F.pod_mac);
  const hostMac = decodeMac(b, F.host_mac);
  return podMac === ZERO_MAC && hostMac === ZERO_MAC ? l : { ...l, podMac, hostMac };
}
