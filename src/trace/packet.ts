// Crafted Ethernet frames for BPF_PROG_TEST_RUN (`netfence trace --engine bpf` and the BPF
// tests): 802.1Q / 802.1ad tags, IPv4 (options, fragments), IPv6 (extension headers,
// fragments), TCP, UDP, SCTP, ICMP, ICMPv6, with the IPv4 header, TCP/UDP/ICMP/ICMPv6
// checksums and the SCTP CRC32c filled in.
import { isIP } from 'node:net';
import { encodeAddr } from '../wire/addr';
import type { L4Protocol } from '../model/rules';

const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;
export const ETH_P_ARP = 0x0806;
const ETH_P_8021Q = 0x8100;
const ETH_P_8021AD = 0x88a8;

export type L4 =
  | { proto: 'tcp'; sport: number; dport: number; flags?: number; doff?: number }
  | { proto: 'udp'; sport: number; dport: number }
  | { proto: 'sctp'; sport: number; dport: number; vtag?: number }
  | { proto: 'icmp'; type: number; code?: number; id?: number; seq?: number }
  | { proto: 'icmpv6'; type: number; code?: number; id?: number; seq?: number }
  | { proto: 'raw'; number: number };

export type ExtHeader = 'hop' | 'route' | 'dest' | 'ah' | { frag: { offset: number; mf: boolean } };

export interface PacketSpec {
  src: string;
  dst: string;
  l4: L4;
  payload?: Buffer;
  /** VLAN tags outermost first; a number is a 802.1Q VID. */
  vlans?: (number | { tpid: number; vid: number })[];
  /** IPv4 options (padded to 4 bytes). */
  v4options?: Buffer;
  /** IPv4 fragment: offset in 8-byte units; a non-zero offset carries no L4 header. */
  frag?: { offset: number; mf: boolean };
  /** IPv6 extension headers in order; a fragment with a non-zero offset ends the L4 header. */
  ext?: ExtHeader[];
}

export const TCP_SYN = 0x02;
export const TCP_ACK = 0x10;

const PROTO: Record<Exclude<L4['proto'], 'raw'>, number> = { tcp: 6, udp: 17, sctp: 132, icmp: 1, icmpv6: 58 };

function protoNumber(l4: L4): number {
  return l4.proto === 'raw' ? l4.number : PROTO[l4.proto];
}

/** Internet checksum (RFC 1071) over the concatenation of parts. */
function inetChecksum(...parts: Buffer[]): number {
  const all = Buffer.concat(parts);
  let sum = 0;
  for (let i = 0; i + 1 < all.length; i += 2) sum += all.readUInt16BE(i);
  if (all.length % 2) sum += all[all.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

const CRC32C_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** CRC32c (Castagnoli), the SCTP checksum. */
function crc32c(b: Buffer): number {
  let c = 0xffffffff;
  for (const x of b) c = CRC32C_TABLE[(c ^ x) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function rawAddr(ip: string): Buffer {
  const b = encodeAddr(ip);
  return isIP(ip) === 4 ? b.subarray(12) : b;
}

function pseudoHeader(src: string, dst: string, proto: number, len: number): Buffer {
  if (isIP(src) === 4) {
    const p = Buffer.alloc(12);
    rawAddr(src).copy(p, 0);
    rawAddr(dst).copy(p, 4);
    p[9] = proto;
    p.writeUInt16BE(len, 10);
    return p;
  }
  const p = Buffer.alloc(40);
  rawAddr(src).copy(p, 0);
  rawAddr(dst).copy(p, 16);
  p.writeUInt32BE(len, 32);
  p[39] = proto;
  return p;
}

/** The L4 header plus payload, checksummed. */
function l4Segment(src: string, dst: string, l4: L4, payload: Buffer): Buffer {
  let h: Buffer;
  switch (l4.proto) {
    case 'tcp': {
      h = Buffer.alloc(20);
      h.writeUInt16BE(l4.sport, 0);
      h.writeUInt16BE(l4.dport, 2);
      h.writeUInt32BE(1, 4);
      h[12] = (l4.doff ?? 5) << 4;
      h[13] = l4.flags ?? TCP_SYN;
      h.writeUInt16BE(65535, 14);
      const seg = Buffer.concat([h, payload]);
      seg.writeUInt16BE(inetChecksum(pseudoHeader(src, dst, 6, seg.length), seg), 16);
      return seg;
    }
    case 'udp': {
      h = Buffer.alloc(8);
      h.writeUInt16BE(l4.sport, 0);
      h.writeUInt16BE(l4.dport, 2);
      h.writeUInt16BE(8 + payload.length, 4);
      const seg = Buffer.concat([h, payload]);
      seg.writeUInt16BE(inetChecksum(pseudoHeader(src, dst, 17, seg.length), seg) || 0xffff, 6);
      return seg;
    }
    case 'sctp': {
      h = Buffer.alloc(12);
      h.writeUInt16BE(l4.sport, 0);
      h.writeUInt16BE(l4.dport, 2);
      h.writeUInt32BE(l4.vtag ?? 0x01020304, 4);
      const seg = Buffer.concat([h, payload]);
      seg.writeUInt32LE(crc32c(seg), 8);
      return seg;
    }
    case 'icmp':
    case 'icmpv6': {
      h = Buffer.alloc(8);
      h[0] = l4.type;
      h[1] = l4.code ?? 0;
      h.writeUInt16BE(l4.id ?? 0, 4);
      h.writeUInt16BE(l4.seq ?? 0, 6);
      const seg = Buffer.concat([h, payload]);
      const sum = l4.proto === 'icmp' ? inetChecksum(seg) : inetChecksum(pseudoHeader(src, dst, 58, seg.length), seg);
      seg.writeUInt16BE(sum, 2);
      return seg;
    }
    case 'raw':
      return Buffer.from(payload);
  }
}

/** An Ethernet header (with VLAN tags) in front of payload. */
export function ethernet(etherType: number, payload: Buffer, vlans: PacketSpec['vlans'] = []): Buffer {
  const tags = vlans.map((v, i) => {
    const tag = typeof v === 'number' ? { tpid: i === 0 && vlans.length > 1 ? ETH_P_8021AD : ETH_P_8021Q, vid: v } : v;
    return tag;
  });
  const hdr = Buffer.alloc(14 + 4 * tags.length);
  Buffer.from([0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01]).copy(hdr, 0);
  let off = 12;
  for (const tag of tags) {
    hdr.writeUInt16BE(tag.tpid, off);
    hdr.writeUInt16BE(tag.vid & 0xfff, off + 2);
    off += 4;
  }
  hdr.writeUInt16BE(etherType, off);
  return Buffer.concat([hdr, payload]);
}

function ipv4(spec: PacketSpec, body: Buffer): Buffer {
  const opts = spec.v4options ?? Buffer.alloc(0);
  const optLen = Math.ceil(opts.length / 4) * 4;
  const h = Buffer.alloc(20 + optLen);
  h[0] = 0x40 | ((20 + optLen) / 4);
  h.writeUInt16BE(h.length + body.length, 2);
  h.writeUInt16BE(0x1234, 4);
  const frag = spec.frag ? (spec.frag.mf ? 0x2000 : 0) | spec.frag.offset : 0x4000; // DF when unfragmented
  h.writeUInt16BE(frag, 6);
  h[8] = 64;
  h[9] = protoNumber(spec.l4);
  rawAddr(spec.src).copy(h, 12);
  rawAddr(spec.dst).copy(h, 16);
  opts.copy(h, 20);
  h.writeUInt16BE(inetChecksum(h), 10);
  return Buffer.concat([h, body]);
}

const EXT_PROTO = { hop: 0, route: 43, dest: 60, ah: 51, frag: 44 } as const;

function extKind(e: ExtHeader): keyof typeof EXT_PROTO {
  return typeof e === 'string' ? e : 'frag';
}

function ipv6(spec: PacketSpec, body: Buffer): Buffer {
  const ext = spec.ext ?? [];
  const parts: Buffer[] = [];
  ext.forEach((e, i) => {
    const next = i + 1 < ext.length ? EXT_PROTO[extKind(ext[i + 1])] : protoNumber(spec.l4);
    if (typeof e !== 'string') {
      const f = Buffer.alloc(8);
      f[0] = next;
      f.writeUInt16BE((e.frag.offset << 3) | (e.frag.mf ? 1 : 0), 2);
      f.writeUInt32BE(0xabcd, 4);
      parts.push(f);
    } else if (e === 'ah') {
      const a = Buffer.alloc(16); // payload length 2 -> (2 + 2) * 4 bytes
      a[0] = next;
      a[1] = 2;
      parts.push(a);
    } else {
      const o = Buffer.alloc(16); // length 1 -> 16 bytes, PadN options
      o[0] = next;
      o[1] = 1;
      if (e === 'route') {
        o[2] = 0; // type 0 routing header, segments left 0
      } else {
        o[2] = 1; // PadN
        o[3] = 12;
      }
      parts.push(o);
    }
  });
  const payload = Buffer.concat([...parts, body]);
  const h = Buffer.alloc(40);
  h.writeUInt32BE(0x60000000, 0);
  h.writeUInt16BE(payload.length, 4);
  h[6] = ext.length ? EXT_PROTO[extKind(ext[0])] : protoNumber(spec.l4);
  h[7] = 64;
  rawAddr(spec.src).copy(h, 8);
  rawAddr(spec.dst).copy(h, 24);
  return Buffer.concat([h, payload]);
}

function nonFirstFragment(spec: PacketSpec): boolean {
  if (spec.frag && spec.frag.offset > 0) return true;
  return (spec.ext ?? []).some((e) => typeof e !== 'string' && e.frag.offset > 0);
}

/** A complete Ethernet frame for the spec. */
export function packet(spec: PacketSpec): Buffer {
  const fam = isIP(spec.src);
  if (fam === 0 || fam !== isIP(spec.dst)) throw new Error(`craft packet: bad address pair ${spec.src} -> ${spec.dst}`);
  const payload = spec.payload ?? Buffer.from('netfence');
  // A non-first fragment carries only payload bytes.
  const body = nonFirstFragment(spec) ? payload : l4Segment(spec.src, spec.dst, spec.l4, payload);
  return fam === 4
    ? ethernet(ETH_P_IP, ipv4(spec, body), spec.vlans)
    : ethernet(ETH_P_IPV6, ipv6(spec, body), spec.vlans);
}

/** What `netfence trace` sends: the first packet of a connection. */
export interface ProbeSpec {
  src: string;
  dst: string;
  protocol: L4Protocol;
  sport: number;
  dport: number; // ignored for ICMP
}

/** SCTP INIT chunk (type 1, 20 bytes): initiate tag 1, a_rwnd 65535, one stream each way. */
function sctpInit(): Buffer {
  const c = Buffer.alloc(20);
  c[0] = 1;
  c.writeUInt16BE(20, 2);
  c.writeUInt32BE(1, 4);
  c.writeUInt32BE(65535, 8);
  c.writeUInt16BE(1, 12);
  c.writeUInt16BE(1, 14);
  return c;
}

function probeL4(p: ProbeSpec): { l4: L4; payload: Buffer } {
  const none = Buffer.alloc(0);
  switch (p.protocol) {
    case 'TCP':
      return { l4: { proto: 'tcp', sport: p.sport, dport: p.dport, flags: TCP_SYN }, payload: none };
    case 'UDP':
      return { l4: { proto: 'udp', sport: p.sport, dport: p.dport }, payload: none };
    case 'SCTP':
      return { l4: { proto: 'sctp', sport: p.sport, dport: p.dport, vtag: 0 }, payload: sctpInit() }; // an INIT carries tag 0
    case 'ICMP':
      return { l4: { proto: 'icmp', type: 8, id: 1, seq: 1 }, payload: none }; // echo request
    case 'ICMPv6':
      return { l4: { proto: 'icmpv6', type: 128, id: 1, seq: 1 }, payload: none };
  }
}

/** TCP SYN, UDP, SCTP INIT, or ICMP/ICMPv6 echo request, with no payload beyond that. */
export function buildPacket(p: ProbeSpec): Buffer {
  const v6 = isIP(p.src) === 6;
  if (isIP(p.src) === 0 || isIP(p.dst) !== isIP(p.src)) {
    throw new Error(`build packet ${p.src} -> ${p.dst}: need two addresses of one family`);
  }
  if ((p.protocol === 'ICMP' && v6) || (p.protocol === 'ICMPv6' && !v6)) {
    throw new Error(`build packet ${p.src} -> ${p.dst}: ${p.protocol} does not fit IPv${v6 ? 6 : 4}`);
  }
  return packet({ src: p.src, dst: p.dst, ...probeL4(p) });
}
