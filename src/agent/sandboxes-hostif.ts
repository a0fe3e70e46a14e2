// The host-side interface of a CNI sandbox: the interface plugin's result names it
// (prevResult.interfaces, an entry without a sandbox; the bridge plugin lists the bridge
// there too, which is not the pod's: only a veth qualifies), else it is the veth peer of
// CNI_IFNAME inside CNI_NETNS. Either way the link must be a veth of this namespace.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { LinkInfo } from '../datapath/native-api';
import { layoutError } from '../endpoints/layout';
import type { HostInterface } from './sandboxes';

const run = promisify(execFile);

/** What the sandbox's own interface is, as seen inside its netns. */
export interface SandboxLink {
  ifindex: number;
  kind: string;
  /** The peer's ifindex (veth), 0 when it has none. */
  peerIfindex: number;
}

export type SandboxLinkReader = (netns: string, ifName: string) => Promise<SandboxLink>;

/** A Linux interface name (IFNAMSIZ, no separators) that cannot read as an option. */
const IFNAME = /^[^-\s/:][^\s/:]{0,14}$/;

/** Reads CNI_IFNAME inside CNI_NETNS with `ip` (a netns switch is per thread: never in the
 *  agent's). Both come from a CNI request: checked before they reach an argv (no shell). */
export const readSandboxLink: SandboxLinkReader = async (netns, ifName) => {
  if (!netns.startsWith('/') || netns.includes('\0'))
    throw new Error(`read sandbox link: CNI_NETNS must be an absolute path, got "${netns}"`);
  if (!IFNAME.test(ifName)) throw new Error(`read sandbox link: CNI_IFNAME is not an interface name: "${ifName}"`);
  const { stdout } = await run('nsenter', [`--net=${netns}`, 'ip', '-j', '-d', 'link', 'show', 'dev', ifName], {
    timeout: 2000,
  });
  const [l] = JSON.parse(stdout) as { ifindex: number; link_index?: number; linkinfo?: { info_kind?: string } }[];
  return { ifindex: l.ifindex, kind: l.linkinfo?.info_kind ?? '', peerIfindex: l.link_index ?? 0 };
};

function namedInResult(prevResult: unknown): string[] {
  const list = (prevResult as { interfaces?: unknown } | null | undefined)?.interfaces;
  if (!Array.isArray(list)) return [];
  return list.flatMap((e) => {
    const i = (e ?? {}) as { name?: unknown; sandbox?: unknown };
    return typeof i.name === 'string' && !i.sandbox ? [i.name] : [];
  });
}

/** The sandbox's interface is of a layout netfence cannot enforce on (macvlan, ipvlan,
 *  an OVS internal port): no pod traffic crosses a device of its own on this node. */
export class UnsupportedLayoutError extends Error {
  override name = 'UnsupportedLayoutError';
}

export interface SandboxRef {
  netns: string;
  ifName: string;
  prevResult?: unknown;
}

/** The host interface of the sandbox among `links` (this namespace's), or why none is. */
export async function hostInterfaceOf(
  links: LinkInfo[],
  req: SandboxRef,
  read: SandboxLinkReader = readSandboxLink,
): Promise<HostInterface | Error> {
  const named = new Set(namedInResult(req.prevResult));
  const fromResult = links.filter((l) => named.has(l.name) && l.kind === 'veth');
  if (fromResult.length === 1) return { name: fromResult[0].name, ifindex: fromResult[0].ifindex };
  const what = `find host interface of ${req.ifName} in ${req.netns}`;
  let inside: SandboxLink;
  try {
    inside = await read(req.netns, req.ifName);
  } catch (e) {
    return new Error(`${what}: ${(e as Error).message.split('\n')[0]}`);
  }
  if (inside.kind !== 'veth') {
    const layout = layoutError({ name: req.ifName, kind: inside.kind });
    return layout
      ? new UnsupportedLayoutError(`${what}: ${layout}`)
      : new Error(`${what}: it is a ${inside.kind || 'non-veth'} interface, not a veth`);
  }
  const peer = links.find(
    (l) => l.ifindex === inside.peerIfindex && l.kind === 'veth' && l.linkIfindex === inside.ifindex,
  );
  if (!peer)
    return new Error(`${what}: its veth peer (ifindex ${inside.peerIfindex}) is not in the agent's network namespace`);
  return { name: peer.name, ifindex: peer.ifindex };
}
