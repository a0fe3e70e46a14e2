// Frames for the malformed cases of the BPF tests (non-IP, cut short, a byte changed), on
// top of the crafter the trace engine uses (src/trace/packet.ts, re-exported here).
import { ETH_P_ARP, ethernet, type PacketSpec } from '../../src/trace/packet';

export { packet, TCP_ACK, TCP_SYN, type ExtHeader, type L4, type PacketSpec } from '../../src/trace/packet';

/** A frame with a non-IP EtherType (ARP request bytes). */
export function arpFrame(vlans?: PacketSpec['vlans']): Buffer {
  const arp = Buffer.from('0001080006040001020000000002' + '0a000001' + '000000000000' + '0a000002', 'hex');
  return ethernet(ETH_P_ARP, arp, vlans);
}

/** Offset of the L3 header in a frame built by packet(). */
export function l3Offset(spec: Pick<PacketSpec, 'vlans'>): number {
  return 14 + 4 * (spec.vlans?.length ?? 0);
}

/** The first n bytes of a frame. */
export function truncate(frame: Buffer, n: number): Buffer {
  return Buffer.from(frame.subarray(0, n));
}

/** A copy of the frame with byte `off` replaced. */
export function patchByte(frame: Buffer, off: number, value: number): Buffer {
  const b = Buffer.from(frame);
  b[off] = value;
  return b;
}
