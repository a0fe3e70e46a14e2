// Crafted frames for BPF_PROG_TEST_RUN: Ethernet + IPv4/IPv6 + TCP SYN, UDP, SCTP
// INIT, or ICMP/ICMPv6 echo request, with valid lengths and checksums.
import { isIP } from 'node:net';
import { addrToBytes } from '../datapath/codecs';
import type { L4Protocol } from '../model/rules';
import { PROTO_NUMBER } from '../compile/ruleset';

export interface PacketSpec {
  src: string;
  dst: string;
  protocol: L4Protocol;
  sport: number;
  dport: number; // ignored for ICMP
}

function checksum(...parts: Buffer[]): number {
  let sum = 0;
  const all = Buffer.concat(parts);
  for (let i = 0; i < all.length; i += 2) sum += (all[i] << 8) | (all[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function l4Header(p: PacketSpec, v6: boolean): Buffer {
  switch (p.protocol) {
    case 'TCP': {
      const b = Buffer.alloc(20);
      b.writeUInt16BE(p.sport, 0);
      b.writeUInt16BE(p.dport, 2);
      b.writeUInt32BE(1, 4); // seq
      b[12] = 5 << 4; // data offset
      b[13] = 0x02; // SYN
      b.writeUInt16BE(65535, 14);
      return b;
    }
    case 'UDP': {
      const b = Buffer.alloc(8);
      b.writeUInt16BE(p.sport, 0);
      b.writeUInt16BE(p.dport, 2);
      b.writeUInt16BE(8, 4);
      return b;
    }
    case 'SCTP': {
      // Common header + an INIT chunk (type 1, 20 bytes).
      const b = Buffer.alloc(32);
      b.writeUInt16BE(p.sport, 0);
      b.writeUInt16BE(p.dport, 2);
      b[12] = 1;
      b.writeUInt16BE(20, 14);
      b.writeUInt32BE(1, 16); // initiate tag
      b.writeUInt32BE(65535, 20); // a_rwnd
      b.writeUInt16BE(1, 24);
      b.writeUInt16BE(1, 26);
      return b;
    }
    case 'ICMP':
    case 'ICMPv6': {
      const b = Buffer.alloc(8);
      b[0] = v6 ? 128 : 8; // echo request
      b.writeUInt16BE(1, 4);
      b.writeUInt16BE(1, 6);
      return b;
    }
  }
}

export function buildPacket(p: PacketSpec): Buffer {
  const v6 = isIP(p.src) === 6;
  if (isIP(p.src) === 0 || isIP(p.dst) !== isIP(p.src)) {
    throw new Error(`build packet ${p.src} -> ${p.dst}: need two addresses of one family`);
  }
  if ((p.protocol === 'ICMP' && v6) || (p.protocol === 'ICMPv6' && !v6)) {
    throw new Error(`build packet ${p.src} -> ${p.dst}: ${p.protocol} does not fit IPv${v6 ? 6 : 4}`);
  }
  const proto = PROTO_NUMBER[p.protocol];
  const l4 = l4Header(p, v6);
  const eth = Buffer.alloc(14);
  Buffer.from([0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1]).copy(eth);
  eth.writeUInt16BE(v6 ? 0x86dd : 0x0800, 12);
  if (v6) {
    const src = addrToBytes(p.src);
    const dst = addrToBytes(p.dst);
    const ip = Buffer.alloc(40);
    ip.writeUInt32BE(0x60000000, 0);
    ip.writeUInt16BE(l4.length, 4);
    ip[6] = proto;
    ip[7] = 64;
    src.copy(ip, 8);
    dst.copy(ip, 24);
    const pseudo = Buffer.alloc(40);
    src.copy(pseudo, 0);
    dst.copy(pseudo, 16);
    pseudo.writeUInt32BE(l4.length, 32);
    pseudo[39] = proto;
    if (p.protocol === 'ICMPv6') l4.writeUInt16BE(checksum(pseudo, l4), 2);
    if (p.protocol === 'TCP') l4.writeUInt16BE(checksum(pseudo, l4), 16);
    if (p.protocol === 'UDP') l4.writeUInt16BE(checksum(pseudo, l4) || 0xffff, 6);
    return Buffer.concat([eth, ip, l4]);
  }
  const src = addrToBytes(p.src).subarray(12);
  const dst = addrToBytes(p.dst).subarray(12);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + l4.length, 2);
  ip.writeUInt16BE(0x4000, 6); // DF
  ip[8] = 64;
  ip[9] = proto;
  src.copy(ip, 12);
  dst.copy(ip, 16);
  ip.writeUInt16BE(checksum(ip), 10);
  const pseudo = Buffer.concat([src, dst, Buffer.from([0, proto, l4.length >> 8, l4.length & 0xff])]);
  if (p.protocol === 'ICMP') l4.writeUInt16BE(checksum(l4), 2);
  if (p.protocol === 'TCP') l4.writeUInt16BE(checksum(pseudo, l4), 16);
  if (p.protocol === 'UDP') l4.writeUInt16BE(checksum(pseudo, l4) || 0xffff, 6);
  return Buffer.concat([eth, ip, l4]);
}
