// The policy maps of bpf/include/maps.h: the ones the compiler fills and reconcile
// writes (pinned under <bpffs root>/ by these names). Their write order is
// reconcile's (src/reconcile/order.ts).

export const POLICY_MAPS = [
  'nf_endpoints',
  'nf_ident_exact',
  'nf_ident_lpm',
  'nf_peer_ident',
  'nf_peer_cidr',
  'nf_ports',
  'nf_rules',
  'nf_local_addrs',
  'nf_svc_cidrs',
] as const;

export type PolicyMapName = (typeof POLICY_MAPS)[number];
