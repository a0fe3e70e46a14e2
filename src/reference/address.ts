// Names the trace CLI accepts for packet ends: "ns/pod", "node/NAME" or an IP.
import { canonicalIp, ipFamily, type Family } from '../model/ip';
import type { Snapshot } from '../model/types';

/** The address of an endpoint name: the first IP of the requested family (any when
 *  omitted), on `network` when given. Throws "resolve X: cause". */
export function resolveAddress(s: Snapshot, spec: string, family?: Family, network?: string): string {
  const literal = canonicalIp(spec);
  if (literal !== undefined) return literal;
  const slash = spec.indexOf('/');
  if (slash <= 0 || slash === spec.length - 1 || spec.indexOf('/', slash + 1) >= 0) {
    throw new Error(`resolve ${spec}: want "namespace/pod", "node/NAME" or an IP address`);
  }
  const [ns, name] = [spec.slice(0, slash), spec.slice(slash + 1)];
  let ips: string[];
  if (ns === 'node' && network === undefined) {
    const node = s.nodes.find((n) => n.name === name);
    if (!node) throw new Error(`resolve ${spec}: no node ${name} in the state`);
    ips = node.addresses;
  } else {
    const pod = s.pods.find((p) => p.namespace === ns && p.name === name);
    if (!pod) throw new Error(`resolve ${spec}: no pod ${ns}/${name} in the state`);
    ips = network === undefined ? pod.ips : pod.networks.filter((n) => n.network === network).flatMap((n) => n.ips);
    if (network !== undefined && !pod.networks.some((n) => n.network === network)) {
      throw new Error(`resolve ${spec}: the pod is not attached to network ${network}`);
    }
  }
  const ip = ips.find((a) => family === undefined || ipFamily(a) === family);
  if (ip === undefined) throw new Error(`resolve ${spec}: no ${family ? `IPv${family} ` : ''}address`);
  return ip;
}
