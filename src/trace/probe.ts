// What trace evaluates: a port spec, packet ends resolved to addresses, the ordered
// pod pairs of a matrix, and the engine interface both engines implement.
import { ipFamily, type Family } from '../model/ip';
import type { L4Protocol } from '../model/rules';
import type { Snapshot } from '../model/types';
import { resolveAddress } from '../reference/address';
import { L4_PROTOCOLS, type Packet, type Verdict } from '../reference/evaluate';

export interface TraceEngine {
  readonly name: 'bpf' | 'model';
  evaluate(pkt: Packet): Verdict;
}

/** "80/TCP", "53/udp", "ICMP" (ICMP and ICMPv6 have no port). */
export function parsePortSpec(text: string): { protocol: L4Protocol; port: number } {
  const m = /^(?:(\d{1,5})\/)?([A-Za-z0-9]+)$/.exec(text);
  const protocol = L4_PROTOCOLS.find((p) => p.toLowerCase() === m?.[2].toLowerCase());
  const icmp = protocol === 'ICMP' || protocol === 'ICMPv6';
  const port = m?.[1] === undefined ? 0 : Number(m[1]);
  if (!m || !protocol || (icmp ? port !== 0 : m[1] === undefined || port < 1 || port > 65535)) {
    throw new Error(`parse --port "${text}": expected N/TCP, N/UDP, N/SCTP (N in 1-65535), ICMP or ICMPv6`);
  }
  return { protocol, port };
}

/** Addresses of both ends in one family: a literal IP decides it, else IPv4 first. */
export function resolvePair(s: Snapshot, from: string, to: string, network?: string): { src: string; dst: string } {
  const literal = ipFamily(from) ?? ipFamily(to);
  const families: Family[] = literal ? [literal] : [4, 6];
  const errors: Error[] = [];
  for (const family of families) {
    try {
      return { src: resolveAddress(s, from, family, network), dst: resolveAddress(s, to, family, network) };
    } catch (e) {
      errors.push(e as Error);
    }
  }
  throw errors[0];
}

export interface MatrixPair {
  from: string;
  to: string;
  src: string;
  dst: string;
}

/** Every ordered pair of distinct pods with an address of `family` (on `network`), by name. */
export function matrixPairs(s: Snapshot, family: Family, network?: string): MatrixPair[] {
  const pods = s.pods
    .map((p) => {
      const ips = network === undefined ? p.ips : p.networks.filter((n) => n.network === network).flatMap((n) => n.ips);
      return { name: `${p.namespace}/${p.name}`, ip: ips.find((ip) => ipFamily(ip) === family) };
    })
    .filter((p): p is { name: string; ip: string } => p.ip !== undefined)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return pods.flatMap((a) =>
    pods.filter((b) => b !== a).map((b) => ({ from: a.name, to: b.name, src: a.ip, dst: b.ip })),
  );
}
