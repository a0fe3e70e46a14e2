// nf_config: the global settings the agent writes (ARRAY map, one element).
import { formatIp, parseIp } from '../model/ip';
import { bytesToAddr, ipBytes } from './addr';
import { r32, w32 } from './bytes';
import { NF_LAYOUT_VERSION } from './abi';
import { ADDR_BYTES, LAYOUT, alloc, checkSize } from './layout';

export interface Config {
  layoutVersion: number;
  flags: number;
  tunnelMark: number;
  tunnelMarkMask: number;
  uplinkIfindex: number;
  eventsPerSec: number;
  /** Text addresses; undefined = none (zero). */
  gateway6?: string;
  gateway4?: string;
}

/** The current layout with nothing switched on: no tunnel, no uplink, no drop events. */
export const PLAIN_CONFIG: Readonly<Config> = {
  layoutVersion: NF_LAYOUT_VERSION,
  flags: 0,
  tunnelMark: 0,
  tunnelMarkMask: 0,
  uplinkIfindex: 0,
  eventsPerSec: 0,
};

const F = LAYOUT.nf_config.fields;
const GW4_BYTES = F._pad - F.gateway4;

export function encodeConfig(c: Config): Buffer {
  const b = alloc('nf_config');
  w32(b, F.layout_version, c.layoutVersion);
  w32(b, F.flags, c.flags);
  w32(b, F.tunnel_mark, c.tunnelMark);
  w32(b, F.tunnel_mark_mask, c.tunnelMarkMask);
  w32(b, F.uplink_ifindex, c.uplinkIfindex);
  w32(b, F.events_per_sec, c.eventsPerSec);
  if (c.gateway6 !== undefined) {
    const ip = parseIp(c.gateway6);
    if (ip?.family !== 6) throw new Error(`encode nf_config.gateway6 "${c.gateway6}": not an IPv6 address`);
    ipBytes(ip).copy(b, F.gateway6);
  }
  if (c.gateway4 !== undefined) {
    const ip = parseIp(c.gateway4);
    if (ip?.family !== 4) throw new Error(`encode nf_config.gateway4 "${c.gateway4}": not an IPv4 address`);
    b.writeUInt32BE(Number(ip.value), F.gateway4); // network order
  }
  return b;
}

export function decodeConfig(b: Buffer): Config {
  checkSize('nf_config', b);
  const g6 = b.subarray(F.gateway6, F.gateway6 + ADDR_BYTES);
  const g4 = b.subarray(F.gateway4, F.gateway4 + GW4_BYTES);
  return {
    layoutVersion: r32(b, F.layout_version),
    flags: r32(b, F.flags),
    tunnelMark: r32(b, F.tunnel_mark),
    tunnelMarkMask: r32(b, F.tunnel_mark_mask),
    uplinkIfindex: r32(b, F.uplink_ifindex),
    eventsPerSec: r32(b, F.events_per_sec),
    gateway6: g6.some((x) => x !== 0) ? bytesToAddr(g6) : undefined,
    gateway4: g4.some((x) => x !== 0) ? formatIp({ family: 4, value: BigInt(g4.readUInt32BE(0)) }) : undefined,
  };
}
