// Peers -> PeerSet (identity ids + CIDRs), and the split of a peer set by the port
// number a named port resolves to on each destination (egress named ports).
import type { Peer } from '../model/rules';
import { bytesToAddr } from '../wire/addr';
import type { Identities } from './identities';
import { canonicalCidr, prefixContains, toPrefix } from './prefix';
import { ANY_CIDR, type CidrPeer, type PeerSet, sortCidrs } from './ruleset';
import type { Selection } from './selection';

// The datapath carries IPv4 as ::ffff:a.b.c.d; an IPv6 block must not match IPv4.
const V4_MAPPED = '::ffff:0:0/96';

function cidrPeer(cidr: string, except: string[]): CidrPeer {
  const canonical = canonicalCidr(cidr);
  const own = except.map(canonicalCidr);
  const v6 = toPrefix(cidr);
  const spansV4 = !canonical.includes('.') && prefixContains(v6, toPrefix(V4_MAPPED));
  return { cidr: canonical, except: [...new Set(spansV4 ? [...own, V4_MAPPED] : own)].sort() };
}

export function resolvePeers(peers: Peer[], sel: Selection, network: string | undefined): PeerSet {
  const identities = new Set<number>();
  const cidrs: CidrPeer[] = [];
  for (const peer of peers) {
    if (peer.kind === 'any') cidrs.push({ cidr: ANY_CIDR, except: [] });
    else if (peer.kind === 'cidr') cidrs.push(cidrPeer(peer.cidr, peer.except));
    else for (const id of sel.peer(peer, network)) identities.add(id);
  }
  return { identities: [...identities].sort((a, b) => a - b), cidrs: sortCidrs(cidrs) };
}

const isAnyAddress = (c: CidrPeer): boolean => c.cidr === ANY_CIDR && c.except.length === 0;

/** Does splitByNamedPort read pod addresses for this peer set (so its result changes
 *  with any pod address, not only with identities)? */
export function splitReadsAddresses(peers: PeerSet): boolean {
  return peers.cidrs.some((c) => !isAnyAddress(c));
}

/** Pod addresses (key hex) inside a CIDR peer and outside its excepts. */
function addressesIn(c: CidrPeer, hexes: Iterable<string>): string[] {
  const outer = toPrefix(c.cidr);
  const except = c.except.map(toPrefix);
  const out: string[] = [];
  for (const hex of hexes) {
    const addr = { addr: Buffer.from(hex, 'hex'), bits: 128 };
    if (prefixContains(outer, addr) && !except.some((e) => prefixContains(e, addr))) out.push(hex);
  }
  return out;
}

/**
 * Destinations of `peers` that have the named port `key` ("PROTO/name"), grouped by
 * the port number it resolves to. Identity peers split by identity (named ports are
 * part of the identity); CIDR peers become the matching pod addresses themselves,
 * except the whole-space peer, which is every pod identity with that port.
 */
export function splitByNamedPort(
  peers: PeerSet,
  key: string,
  ids: Identities,
  sel: Selection,
  network: string | undefined,
): Map<number, PeerSet> {
  const groups = new Map<number, { identities: Set<number>; cidrs: CidrPeer[] }>();
  const group = (port: number) => {
    let g = groups.get(port);
    if (!g) groups.set(port, (g = { identities: new Set(), cidrs: [] }));
    return g;
  };
  const addIdentity = (identity: number) => {
    const port = ids.byId.get(identity)?.namedPorts.get(key);
    if (port !== undefined) group(port).identities.add(identity);
  };
  peers.identities.forEach(addIdentity);
  // Pod addresses on this network with the port, once for every CIDR peer.
  let withPort: Map<string, number> | undefined;
  for (const c of peers.cidrs) {
    if (isAnyAddress(c)) {
      sel.onNetwork(network).forEach((i) => addIdentity(i.id));
      continue;
    }
    withPort ??= podPorts(ids, key, network);
    for (const hex of addressesIn(c, withPort.keys())) {
      group(withPort.get(hex)!).cidrs.push({ cidr: canonicalCidr(bytesToAddr(Buffer.from(hex, 'hex'))), except: [] });
    }
  }
  const out = new Map<number, PeerSet>();
  for (const port of [...groups.keys()].sort((a, b) => a - b)) {
    const g = groups.get(port)!;
    out.set(port, { identities: [...g.identities].sort((a, b) => a - b), cidrs: sortCidrs(g.cidrs) });
  }
  return out;
}

/** Key hex -> port number of the pod addresses on `network` whose identity has named port `key`. */
function podPorts(ids: Identities, key: string, network: string | undefined): Map<string, number> {
  const out = new Map<string, number>();
  for (const [hex, owner] of ids.byAddress) {
    const id = ids.byId.get(owner.identity);
    const port = owner.pod && id && id.network === network ? id.namedPorts.get(key) : undefined;
    if (port !== undefined) out.set(hex, port);
  }
  return out;
}
