// The order in which reconcile writes the policy maps.
import type { PolicyMapName } from '../wire/maps';

/** Order in which reconcile writes maps so that no packet sees a half-updated
 *  endpoint: table contents and identities first, endpoints last; deletes run in
 *  reverse order after every write. Every policy map (wire/maps.ts) once. */
export const MAP_WRITE_ORDER: readonly PolicyMapName[] = [
  'nf_rules',
  'nf_ports',
  'nf_peer_cidr',
  'nf_peer_ident',
  'nf_ident_lpm',
  'nf_ident_exact',
  'nf_svc_cidrs',
  'nf_local_addrs',
  'nf_endpoints',
];
