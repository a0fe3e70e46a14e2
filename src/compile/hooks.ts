// Which tc hooks of an endpoint carry the classifier. A hook where the program could
// only pass every packet is left empty: an attached program, even one that returns at
// once, costs every packet the hook dispatch and cold cache lines (bench/REPORT.md,
// "hook floor"). Mirrors nf_pod_passes_unparsed in bpf/netfence.bpf.c. Part of the
// compile output (CompiledEndpoint.hooks), so nobody decodes an entry to learn it.
import { NfEpFlag } from '../wire/abi';
import type { Endpoint } from '../wire/endpoint';

/** A tc hook, named as the kernel names it (not a policy direction). */
export type TcHook = 'ingress' | 'egress';
export const TC_HOOKS: readonly TcHook[] = ['ingress', 'egress'];

/** Hooks the endpoint needs: host interfaces always both; a pod endpoint (veth or VF
 *  representor) none while it has no table, no tunnel, no local delivery and (tc egress)
 *  no deferred source check. Its tc ingress also creates the conntrack entries that let
 *  replies through its ingress table, so any table needs both hooks. */
export function hooksFor(ep: Pick<Endpoint, 'flags' | 'ingressTable' | 'egressTable'>): TcHook[] {
  if (ep.flags & NfEpFlag.HOST || !(ep.flags & NfEpFlag.POD)) return [...TC_HOOKS];
  const busy =
    ep.ingressTable !== 0 || ep.egressTable !== 0 || (ep.flags & (NfEpFlag.TUNNEL | NfEpFlag.LOCAL_DELIVERY)) !== 0;
  return TC_HOOKS.filter((d) => busy || (d === 'egress' && (ep.flags & NfEpFlag.SRC_CHECK) !== 0));
}
