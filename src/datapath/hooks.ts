// Which tc hooks of an endpoint carry the classifier. A hook where the program could
// only pass every packet is left empty: an attached program, even one that returns at
// once, costs every packet the hook dispatch and cold cache lines (bench/REPORT.md,
// "hook floor"). Mirrors nf_pod_passes_unparsed in bpf/netfence.bpf.c.
import { NfEpFlag } from '../wire/abi';
import type { Endpoint } from '../wire/endpoint';
import type { TcDirection } from './native-api';

export const TC_DIRECTIONS: readonly TcDirection[] = ['ingress', 'egress'];

/** Hooks the endpoint needs: host interfaces always both; a pod endpoint (veth or VF
 *  representor) none while it has no table, no tunnel, no local delivery and (tc egress)
 *  no deferred source check. Its tc ingress also creates the conntrack entries that let
 *  replies through its ingress table, so any table needs both hooks. */
export function hooksFor(ep: Pick<Endpoint, 'flags' | 'ingressTable' | 'egressTable'>): TcDirection[] {
  if (ep.flags & NfEpFlag.HOST || !(ep.flags & NfEpFlag.POD)) return [...TC_DIRECTIONS];
  const busy = ep.ingressTable !== 0 || ep.egressTable !== 0 || (ep.flags & (NfEpFlag.TUNNEL | NfEpFlag.LOCAL_DELIVERY)) !== 0;
  return TC_DIRECTIONS.filter((d) => busy || (d === 'egress' && (ep.flags & NfEpFlag.SRC_CHECK) !== 0));
}
