// A pod's addresses from the CNI ADD request: the interface plugin's result (prevResult,
// CNI spec: ips[].address in CIDR form). The API publishes status.podIPs only after ADD
// returns, so with the Kubernetes source this is how the agent learns a new pod's
// addresses in time to enforce its policies before the pod starts.
import { canonicalIp } from '../model/ip';

/** Canonical addresses of prevResult.ips; anything unreadable is skipped. */
export function prevResultIps(prevResult: unknown): string[] {
  const ips = (prevResult as { ips?: unknown } | null | undefined)?.ips;
  if (!Array.isArray(ips)) return [];
  return ips.flatMap((e) => {
    const address = (e as { address?: unknown } | null)?.address;
    const ip = typeof address === 'string' ? canonicalIp(address.split('/')[0]) : undefined;
    return ip ? [ip] : [];
  });
}
