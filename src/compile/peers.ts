// Peers -> PeerSet (identity ids + CIDRs), and the split of a peer set by the port
// number a named port resolves to on each destination (egress named ports).
import type { Peer } from '../model/rules';
import type { Snapshot } from '../model/types';
import { bytesToAddr } from '../datapath/codecs';
import { peerSelects } from '../selectors/resolve';
import type { Identities, Identity } from './identities';
import { canonicalCidr, prefixContains, toPrefix } from './prefix';
import { ANY_CIDR, type CidrPeer, type PeerSet, sortCidrs } from './ruleset';

// The datapath carries IPv4 as ::ffff:a.b.c.d; an IPv6 block must not match IPv4.
const V4_MAPPED = '::ffff:0:0/96';

function cidrPeer(cidr: string, except: string[]): CidrPeer {
  const canonical = canonicalCidr(cidr);
  const own = except.map(canonicalCidr);
  const v6 = toPrefix(cidr);
  const spansV4 = !canonical.includes('.') && prefixContains(v6, toPrefix(V4_MAPPED));
  return { cidr: canonical, except: [...new Set(spansV4 ? [...own, V4_MAPPED] : own)].sort() };
}

/** Identities on the table's network (undefined = primary). */
function onNetwork(ids: Identities, network: string | undefined): Identity[] {
  return ids.list.filter((i) => i.network === network);
}

export function resolvePeers(s: Snapshot, peers: Peer[], ids: Identities, network: string | undefined): PeerSet {
  const identities = new Set<number>();
  const cidrs: CidrPeer[] = [];
  for (const peer of peers) {
    if (peer.kind === 'any') cidrs.push({ cidr: ANY_CIDR, except: [] });
    else if (peer.kind === 'cidr') cidrs.push(cidrPeer(peer.cidr, peer.except));
    else {
      for (const id of onNetwork(ids, network)) if (peerSelects(s, peer, id.endpoint)) identities.add(id.id);
    }
  }
  return { identities: [...identities].sort((a, b) => a - b), cidrs: sortCidrs(cidrs) };
}

function inCidrPeer(c: CidrPeer, ipHex: string): boolean {
  const addr = { addr: Buffer.from(ipHex, 'hex'), bits: 128 };
  return prefixContains(toPrefix(c.cidr), addr) && !c.except.some((e) => prefixContains(toPrefix(e), addr));
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
  for (const c of peers.cidrs) {
    if (c.cidr === ANY_CIDR && c.except.length === 0) {
      onNetwork(ids, network).forEach((i) => addIdentity(i.id));
      continue;
    }
    for (const [hex, owner] of ids.byAddress) {
      const id = ids.byId.get(owner.identity);
      const port = owner.pod && id && id.network === network ? id.namedPorts.get(key) : undefined;
      if (port === undefined || !inCidrPeer(c, hex)) continue;
      group(port).cidrs.push({ cidr: canonicalCidr(bytesToAddr(Buffer.from(hex, 'hex'))), except: [] });
    }
  }
  const out = new Map<number, PeerSet>();
  for (const port of [...groups.keys()].sort((a, b) => a - b)) {
    const g = groups.get(port)!;
    out.set(port, { identities: [...g.identities].sort((a, b) => a - b), cidrs: sortCidrs(g.cidrs) });
  }
  return out;
}
