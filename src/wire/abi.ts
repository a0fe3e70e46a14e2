// The ABI constants and enums of bpf/include/netfence.h. Numbers mirror its #defines;
// every enum mirrors a C enum pinned into the object's BTF (bpf/include/btf_pins.h),
// and test/bpf/btf-layout.test.ts checks each value and the #defines against them.

export const NF_LAYOUT_VERSION = 4;
/** Rules per chunk (one bitmap); a table spans up to NF_MAX_CHUNKS chunks. */
export const NF_CHUNK_RULES = 256;
export const NF_BITMAP_WORDS = NF_CHUNK_RULES / 64;
/** Chunk c of table t keys its bitmaps (nf_peer_ident, nf_peer_cidr, nf_ports) by t | c << NF_CHUNK_SHIFT. */
export const NF_CHUNK_SHIFT = 24;
/** Table ids live in the low NF_CHUNK_SHIFT bits. */
export const NF_TABLE_MASK = (1 << NF_CHUNK_SHIFT) - 1;
export const NF_MAX_CHUNKS = 64;
export const NF_MAX_RULES = NF_CHUNK_RULES * NF_MAX_CHUNKS;
export const NF_TABLE_NONE = 0;
/** Reserved table id: deny all in that direction without a map lookup (the last resort of
 *  an endpoint whose isolation table does not fit). The compiler never assigns it. */
export const NF_TABLE_DENY = NF_TABLE_MASK;
export const NF_RULE_DEFAULT = 0xffffffff;
/** nf_ct_val.rule for a flow allowed by the default (no rule matched). */
export const NF_CT_RULE_DEFAULT = 0xffff;
/** Life of a closing conntrack entry past its last packet (nf_ct_val.expires_ns). */
export const NF_CT_CLOSE_TIMEOUT_NS = 10_000_000_000n;

/** enum nf_dir */
export const NfDir = { INGRESS: 0, EGRESS: 1 } as const;
/** enum nf_action */
export const NfAction = { NONE: 0, ALLOW: 1, DENY: 2, PASS: 3 } as const;
/** enum nf_tier */
export const NfTier = { SYSTEM: 0, ADMIN: 1, NETPOL: 2, BASELINE: 3, DEFAULT: 4 } as const;
/** enum nf_ep_flag */
export const NfEpFlag = {
  POD: 1 << 0,
  HOST: 1 << 1,
  TUNNEL: 1 << 2,
  SECONDARY: 1 << 3,
  KEEP_ESTABLISHED: 1 << 4,
  SRC_CHECK: 1 << 5,
  SVC_CIDRS: 1 << 6,
  LOCAL_DELIVERY: 1 << 7,
} as const;
/** enum nf_ct_flag */
export const NfCtFlag = {
  DEFERRED: 1 << 0,
  SEEN_REPLY: 1 << 1,
  NO_TUNNEL: 1 << 2,
  FIN_FWD: 1 << 3,
  FIN_REPLY: 1 << 4,
  CLOSING: 1 << 5,
} as const;
/** enum nf_ct_orig */
export const NfCtOrig = { EGRESS: 1 << 0, SRC_HI: 1 << 1 } as const;
/** enum nf_local_kind */
export const NfLocalKind = { POD: 1, NODE: 2 } as const;
/** enum nf_ep_verdict */
export const NfEpVerdict = { ALLOWED: 0, DENIED: 1 } as const;
/** Endpoint counter slots (nf_endpoint.stats_slot 1..NF_EP_SLOTS-1; 0 = not counted). */
export const NF_EP_SLOTS = 4096;
/** enum nf_cfg_flag */
export const NfCfgFlag = {
  TUNNEL_FWMARK: 1 << 0,
  TUNNEL_DIRECT: 1 << 1,
  TUNNEL_OFF4: 1 << 2,
  TUNNEL_OFF6: 1 << 3,
} as const;
/** enum nf_reason */
export const NfReason = {
  NONE: 0,
  POLICY_DENY: 1,
  ISOLATED: 2,
  MALFORMED: 3,
  REVISION_DENY: 4,
  PREFILTER: 5,
  /** a pass, not a drop: ICMP errors related to a tracked flow */
  RELATED: 6,
  MAX: 7,
} as const;
/** Flow records' drop_reason_desc, indexed by NfReason (NF_REASON_MAX entries). */
export const NF_REASON_DESC: readonly string[] = [
  'none',
  'policy_deny',
  'isolated',
  'malformed',
  'revision_deny',
  'prefilter',
  'related',
];
/** The kernel's IPPROTO_* numbers the datapath parses. */
export const IPPROTO = { ICMP: 1, TCP: 6, UDP: 17, ICMPV6: 58, SCTP: 132 } as const;
