// Which pod endpoint each CNI sandbox interface is, and what it adds to a snapshot. The
// kubelet's pod network is always CNI_IFNAME eth0: its addresses feed the pod's IPs. Any
// other interface is a secondary network (Multus: net1, net2, ...): the pod's
// network-status entry for that interface names its NetworkAttachmentDefinition, else the
// CNI network name (netconf `name`) does; its addresses feed that entry of pod.networks,
// the one MultiNetworkPolicy and secondary-endpoint discovery read. Pure, for unit tests.
import { cniEndpointKey } from '../endpoints/discover';
import type { NetworkAttachmentDefinitionObj, PodNetwork, PodObj, Snapshot } from '../model/types';
import { sandboxKey, type HostInterface, type Sandbox } from './sandboxes';

/** CNI_IFNAME of the pod network (fixed by the kubelet / CRI runtimes). */
export const PRIMARY_IFNAME = 'eth0';

/** The endpoint a sandbox interface is: the pod's primary one (no network), a secondary
 *  network ("ns/nad"), or why it cannot be told. */
export type SandboxEndpoint = { network?: string } | { error: string };

function configName(config: string): string | undefined {
  try {
    const name = (JSON.parse(config) as { name?: unknown } | null)?.name;
    return typeof name === 'string' ? name : undefined;
  } catch {
    return undefined;
  }
}

export function endpointOfSandbox(
  s: Sandbox,
  pod: PodObj | undefined,
  nads: readonly NetworkAttachmentDefinitionObj[],
): SandboxEndpoint {
  if (s.ifName === PRIMARY_IFNAME) return {};
  const listed = pod?.networks.find((n) => n.interface === s.ifName);
  if (listed) return { network: listed.network };
  const what = `cni sandbox ${s.containerId} of pod ${s.pod} on ${s.ifName}`;
  if (!s.network)
    return {
      error: `${what}: a secondary interface whose CNI request names no network (netfence-cni too old) and no network-status entry for it`,
    };
  const podNs = s.pod.split('/')[0];
  const matches = nads.filter(
    (n) => `${n.namespace}/${n.name}` === s.network || n.name === s.network || configName(n.config) === s.network,
  );
  // Multus resolves a bare NAD name in the pod's namespace first.
  const here = matches.filter((n) => n.namespace === podNs);
  const found = here.length > 0 ? here : matches;
  if (found.length === 1) return { network: `${found[0].namespace}/${found[0].name}` };
  if (found.length === 0)
    return {
      error: `${what}: network "${s.network}": no NetworkAttachmentDefinition of that name (or whose config is named so) in the state`,
    };
  return {
    error: `${what}: network "${s.network}" is ambiguous: ${found.map((n) => `${n.namespace}/${n.name}`).join(', ')}`,
  };
}

/** The sandbox's addresses replace the source's unless the source lists them all already
 *  (the source catches up after ADD returns). */
const newer = (source: readonly string[], cni: readonly string[]): boolean =>
  cni.length > 0 && !cni.every((ip) => source.includes(ip));

function withSecondary(networks: PodNetwork[], network: string, s: Sandbox): PodNetwork[] {
  const at = networks.findIndex((n) => n.network === network);
  if (at < 0) return [...networks, { network, interface: s.ifName, ips: s.ips }];
  const n = networks[at];
  if (!newer(n.ips, s.ips)) return networks;
  return networks.map((x, i) => (i === at ? { ...n, ips: s.ips } : x));
}

export interface SandboxesApplied {
  snapshot: Snapshot;
  /** Host interface of each sandbox endpoint, by cniEndpointKey (for discovery). */
  cniInterfaces: Map<string, HostInterface>;
  /** What each sandbox is, by `pod ifName`. */
  endpoints: Map<string, SandboxEndpoint>;
}

/** The snapshot with the sandboxes' addresses on their pods' endpoints. */
export function applySandboxes(s: Snapshot, sandboxes: readonly Sandbox[]): SandboxesApplied {
  const cniInterfaces = new Map<string, HostInterface>();
  const endpoints = new Map<string, SandboxEndpoint>();
  if (sandboxes.length === 0) return { snapshot: s, cniInterfaces, endpoints };
  const byPod = new Map<string, Sandbox[]>();
  for (const sb of sandboxes) byPod.set(sb.pod, [...(byPod.get(sb.pod) ?? []), sb]);
  const pods = new Map(s.pods.map((p) => [`${p.namespace}/${p.name}`, p]));
  for (const sb of sandboxes) {
    const ep = endpointOfSandbox(sb, pods.get(sb.pod), s.networkAttachmentDefinitions);
    endpoints.set(sandboxKey(sb.pod, sb.ifName), ep);
    if (sb.hostIf && !('error' in ep)) cniInterfaces.set(cniEndpointKey(sb.pod, ep.network), sb.hostIf);
  }
  const merged = s.pods.map((p) => {
    const key = `${p.namespace}/${p.name}`;
    let out = p;
    for (const sb of byPod.get(key) ?? []) {
      const ep = endpoints.get(sandboxKey(key, sb.ifName))!;
      if ('error' in ep) continue;
      if (ep.network === undefined) out = newer(out.ips, sb.ips) ? { ...out, ips: sb.ips } : out;
      else {
        const networks = withSecondary(out.networks, ep.network, sb);
        out = networks === out.networks ? out : { ...out, networks };
      }
    }
    return out;
  });
  return { snapshot: { ...s, pods: merged }, cniInterfaces, endpoints };
}
