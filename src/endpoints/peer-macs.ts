// Veth peer MACs remembered across passes. Asking for one is a netlink round trip per
// pod veth in every pass, O(pods) per pass, each waiting on the kernel's rtnl lock while
// pods come and go. A veth keeps its peer for life (the key holds the host ifindex, never
// reused, and the peer's namespace id and ifindex); a pod that changes its interface's
// MAC, which no event in this namespace announces, is seen after forget() (the agent's
// periodic resync). A peer not found is asked again next time.
import type { LinkInfo } from '../datapath/native-api';

const keyOf = (l: LinkInfo): string => `${l.ifindex}/${l.linkNetnsid ?? ''}/${l.linkIfindex}`;

export class PeerMacs {
  private known = new Map<string, string>();

  /** The next passes ask the kernel again. */
  forget(): void {
    this.known.clear();
  }

  /** The MAC remembered for this veth, else `ask(link)` (remembered unless null). */
  lookup(link: LinkInfo, ask: (l: LinkInfo) => string | null): string | null {
    const key = keyOf(link);
    const hit = this.known.get(key);
    if (hit !== undefined) return hit;
    const mac = ask(link);
    if (mac !== null) this.known.set(key, mac);
    return mac;
  }

  /** Drops what is remembered of links no longer in the view (one pass over each). */
  keepOnly(links: readonly LinkInfo[]): void {
    if (this.known.size === 0) return;
    const live = new Set(links.map(keyOf));
    for (const key of this.known.keys()) if (!live.has(key)) this.known.delete(key);
  }
}
