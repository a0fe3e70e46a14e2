/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * netfence wire structs: the one source of truth shared by the BPF programs
 * and userspace. src/wire/ mirrors every struct, enum and constant here and
 * test/bpf/btf-layout.test.ts checks them against the object's BTF (bpf/include/
 * btf_pins.h pins every enum there).
 *
 * Conventions:
 *  - Addresses are 16 bytes: IPv6 as is, IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d),
 *    so one trie serves both families.
 *  - Multi-byte fields inside LPM keys are big-endian (the trie matches bytes
 *    from the first one); every other integer is host order.
 *  - Explicit padding: no struct relies on implicit compiler padding.
 *  - Enumerated values and flag bits are enums (fields stay fixed-size integers),
 *    so BTF carries them; plain numbers are #defines.
 */
#ifndef NETFENCE_H
#define NETFENCE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define NF_LAYOUT_VERSION 4

/*
 * A table of N rules spans ceil(N / NF_CHUNK_RULES) chunks. Chunk c holds rules
 * [c * NF_CHUNK_RULES, (c + 1) * NF_CHUNK_RULES): its bitmaps in nf_peer_ident,
 * nf_peer_cidr and nf_ports are keyed by table | c << NF_CHUNK_SHIFT and bit i means
 * rule c * NF_CHUNK_RULES + i. nf_rules and nf_rule_stats are keyed by the base table
 * id and the global rule index. Table ids use the low NF_CHUNK_SHIFT bits only.
 * Past NF_MAX_RULES the compiler refuses the table.
 */
#define NF_CHUNK_RULES 256
#define NF_BITMAP_WORDS (NF_CHUNK_RULES / 64)
#define NF_CHUNK_SHIFT 24
#define NF_TABLE_MASK ((1u << NF_CHUNK_SHIFT) - 1)
#define NF_MAX_CHUNKS 64
#define NF_MAX_RULES (NF_CHUNK_RULES * NF_MAX_CHUNKS)

/* Table id 0 means "no policy in this direction": default allow. */
#define NF_TABLE_NONE 0
/* Reserved table id: deny everything in this direction, with no map entry to look up
 * (privileged rules included). The last resort of an endpoint whose isolation table did
 * not fit the maps; the compiler never assigns it. */
#define NF_TABLE_DENY NF_TABLE_MASK

/* Policy direction, relative to the endpoint (not to the hook). */
enum nf_dir {
	NF_DIR_INGRESS = 0, /* traffic to the endpoint */
	NF_DIR_EGRESS = 1,  /* traffic from the endpoint */
};

enum nf_action {
	NF_ACT_NONE = 0,
	NF_ACT_ALLOW = 1,
	NF_ACT_DENY = 2,
	NF_ACT_PASS = 3, /* skip the rest of this rule's tier */
};

enum nf_tier {
	NF_TIER_SYSTEM = 0,   /* privileged rules (node lockout safety, own node) */
	NF_TIER_ADMIN = 1,    /* ClusterNetworkPolicy tier Admin, node policies */
	NF_TIER_NETPOL = 2,   /* NetworkPolicy / MultiNetworkPolicy (+ isolation deny) */
	NF_TIER_BASELINE = 3, /* ClusterNetworkPolicy tier Baseline */
	NF_TIER_DEFAULT = 4,  /* no rule matched: default allow */
};

/* Endpoint flags (struct nf_endpoint.flags). */
enum nf_ep_flag {
	NF_EP_F_POD = 1u << 0,       /* pod veth / VF representor: tc ingress = from the pod */
	NF_EP_F_HOST = 1u << 1,      /* host interface: tc ingress = to the node */
	NF_EP_F_TUNNEL = 1u << 2,    /* transparent tunnel applies to traffic from this pod */
	NF_EP_F_SECONDARY = 1u << 3, /* secondary network (MultiNetworkPolicy) */
	/* established flows survive a policy revision change (refreshed, not re-evaluated):
	 * host endpoints while NetfenceConfig privileged.enabled && established */
	NF_EP_F_KEEP_ESTABLISHED = 1u << 4,
	/* tc egress runs the deferred egress check of a local source pod (DESIGN.md "Known
	 * hard part"). Set by the compiler on every endpoint of the node while a local pod
	 * has an egress table (without one the check allows every packet). Without it, and
	 * without tables or the tunnel flag, a pod endpoint's packets pass right after the
	 * endpoint lookup. */
	NF_EP_F_SRC_CHECK = 1u << 5,
	/* the node has service CIDRs (nf_svc_cidrs): a pod's tc ingress looks its
	 * destination up there. Set by the compiler on every endpoint while it has some. */
	NF_EP_F_SVC_CIDRS = 1u << 6,
	/* local delivery: a host veth (primary network) whose allowed traffic to another such
	 * local pod is handed straight to that pod's interface (bpf_redirect_peer) once both
	 * ends' policies passed, skipping the node's stack; its tc egress flags flows that
	 * came through the stack instead, so their replies go back that way (NAT). The
	 * addresses of the pod's nf_local entries carry the MACs. */
	NF_EP_F_LOCAL_DELIVERY = 1u << 7,
};

/* Endpoint map value; key: __u32 ifindex. */
struct nf_endpoint {
	__u32 id;        /* stable endpoint id (conntrack, events, counters) */
	__u32 table[2];  /* base table ids by enum nf_dir; NF_TABLE_NONE = not isolated, NF_TABLE_DENY = deny all */
	__u32 flags;     /* enum nf_ep_flag bits */
	__u32 revision;  /* policy revision; conntrack entries of another revision are re-evaluated */
	/* chunks of table[dir] (0 reads as 1): in the same value as the table, so a
	 * switch to a table of another size is one atomic write */
	__u8 chunks[2];
	/* its counters' slot in nf_ep_counters (NF_EP_COUNTER_INDEX), chosen by the agent
	 * while the endpoint lives; 0 = not counted (no slot was free) */
	__u16 stats_slot;
};

/* An address in the 16-byte form (key of nf_ident_exact, nf_local_addrs). */
struct nf_addr {
	__u8 a[16];
};

/* LPM key over one address (nf_ident_lpm, nf_svc_cidrs, prefilter). */
struct nf_addr_lpm_key {
	__u32 prefixlen; /* 0..128 */
	__u8 addr[16];
};

/* Rule bitmap of one chunk: bit i of word i/64 = rule i of the chunk (precedence order). */
struct nf_bitmap {
	__u64 w[NF_BITMAP_WORDS];
};

/* nf_peer_ident key: which rules of a table chunk select a peer identity. */
struct nf_peer_ident_key {
	__u32 table;    /* table | chunk << NF_CHUNK_SHIFT */
	__u32 identity;
};

/* nf_peer_cidr LPM key: prefixlen counts the 32 table bits + the address bits. */
struct nf_cidr_key {
	__u32 prefixlen; /* 32 + 0..128 */
	__u8 table[4];   /* big-endian table | chunk << NF_CHUNK_SHIFT */
	__u8 addr[16];
};

/* nf_ports LPM key: prefixlen counts 32 table bits + 8 protocol bits + port bits.
 * prefixlen 32 = every protocol and port; 40 = every port of the protocol. */
struct nf_port_key {
	__u32 prefixlen; /* 32, 40 + 0..16 */
	__u8 table[4];   /* big-endian table | chunk << NF_CHUNK_SHIFT */
	__u8 proto;      /* IPPROTO_* */
	__u8 port[2];    /* big-endian destination port (ICMP: type << 8 | code is not used: 0) */
	__u8 _pad;
};

/* nf_rules key and value: what rule `index` of `table` does. */
struct nf_rule_key {
	__u32 table;    /* base table id */
	__u32 index;    /* global rule index (all chunks) */
};

struct nf_rule {
	__u8 action;    /* enum nf_action */
	__u8 tier;      /* enum nf_tier */
	__u16 tier_end; /* global index of the first rule after this rule's tier (Pass jumps there) */
	__u32 policy_id;/* index into the compiled policy-name table (userspace) */
	__u32 rule_id;  /* rule id within the policy */
	__u32 _pad;
};

/* Per-CPU counters (nf_rule_stats keyed by nf_rule_key; index NF_RULE_DEFAULT = no rule). */
#define NF_RULE_DEFAULT 0xffffffffu
struct nf_counter {
	__u64 packets;
	__u64 bytes;
};

/* Per-endpoint counters (nf_ep_counters, a per-CPU array): every packet the
 * classifier decides for an endpoint, by policy direction and verdict. Allowed counts
 * established and reply packets (conntrack) and default allows too, so unlike
 * nf_rule_stats it is the endpoint's real traffic; a drop counts for the endpoint it
 * is attributed to (a deferred service check: the source pod, egress). Indexed by
 * the endpoint's stats_slot, not hashed by its id: an array lookup is a few inlined
 * instructions where a hash cost two cold cache lines per packet and endpoint. The
 * agent zeroes a slot's counters before an endpoint gets it. */
enum nf_ep_verdict {
	NF_EP_ALLOWED = 0,
	NF_EP_DENIED = 1,
};

#define NF_EP_SLOTS 4096
#define NF_EP_COUNTER_INDEX(slot, dir, verdict) ((slot) * 4 + (dir) * 2 + (verdict))

/* Conntrack (LRU hash). One key per flow and endpoint whichever way a packet goes:
 * the flow's two ends (address, port) in ascending order, so a packet costs one
 * lookup (a reply needs no second one for the reversed tuple). Which end opened
 * the flow, and in which policy direction, is in the value (nf_ct_val.orig). */
struct nf_ct_key {
	__u32 ep_id;
	__u8 _pad0;
	__u8 proto;
	__u16 _pad;
	__u8 addr_lo[16]; /* the lower end: (addr_lo, port_lo) < (addr_hi, port_hi) */
	__u8 addr_hi[16];
	__u16 port_lo;    /* network order */
	__u16 port_hi;    /* network order */
};

/* nf_ct_val.flags */
enum nf_ct_flag {
	NF_CT_F_DEFERRED = 1u << 0, /* allowed toward a service CIDR; backend checked after DNAT */
	NF_CT_F_SEEN_REPLY = 1u << 1,
	/* the flow reached the pod straight from the node's stack (e.g. after DNAT), not
	 * through the transparent tunnel or local delivery: its replies are neither
	 * tunnelled nor delivered locally, the stack undoes its NAT */
	NF_CT_F_NO_TUNNEL = 1u << 2,
	/* TCP close: a FIN seen from the side that opened the flow / from the other side */
	NF_CT_F_FIN_FWD = 1u << 3,
	NF_CT_F_FIN_REPLY = 1u << 4,
	/* RST or FIN both ways: the entry lives NF_CT_CLOSE_TIMEOUT_NS past its last packet,
	 * and a new SYN on the tuple is evaluated as a new flow */
	NF_CT_F_CLOSING = 1u << 5,
};

/* nf_ct_val.orig */
enum nf_ct_orig {
	NF_CT_O_EGRESS = 1u << 0, /* allowed in direction NF_DIR_EGRESS (else INGRESS) */
	NF_CT_O_SRC_HI = 1u << 1, /* its first packet came from the key's hi end */
};

/* nf_ct_val.rule of a flow the default allowed (no rule matched); rule indices above
 * it are clamped to it. */
#define NF_CT_RULE_DEFAULT 0xffff

/* Life of a closing entry after its last packet (Cilium's CT_CLOSE_TIMEOUT). */
#define NF_CT_CLOSE_TIMEOUT_NS (10ULL * 1000000000ULL)

struct nf_ct_val {
	__u64 last_seen_ns;
	__u32 revision;
	__u16 rule;    /* rule index that allowed it (NF_CT_RULE_DEFAULT = default allow) */
	__u8 flags;    /* enum nf_ct_flag bits */
	__u8 orig;     /* enum nf_ct_orig bits: how the flow was first seen */
	/* CLOCK_MONOTONIC ns (coarse) from which the entry is void (a packet finding it is
	 * evaluated as new); 0 = none: open flows live until the LRU evicts them */
	__u64 expires_ns;
};

/* Local addresses: pod and node addresses on this node (tunnel decision, source
 * endpoint of deferred egress checks). */
enum nf_local_kind {
	NF_LOCAL_POD = 1,
	NF_LOCAL_NODE = 2,
};

struct nf_local {
	__u32 ifindex; /* the pod's host-side interface (0 for node addresses) */
	__u32 kind;    /* enum nf_local_kind */
	/* a pod on a local-delivery veth: the Ethernet addresses of a frame to it, its
	 * own interface's (destination) then its host veth's (source); else zero */
	__u8 pod_mac[6];
	__u8 host_mac[6];
};

/* Drop reasons shared with userspace (flow records' drop_reason_desc), and the
 * index of the per-reason counters (nf_reason_stats). NF_REASON_RELATED is the one
 * pass counted there: never a drop reason, no event carries it. */
enum nf_reason {
	NF_REASON_NONE = 0,
	NF_REASON_POLICY_DENY = 1,    /* an explicit Deny / Drop rule */
	NF_REASON_ISOLATED = 2,       /* NetworkPolicy isolation: no allow matched */
	NF_REASON_MALFORMED = 3,      /* truncated or malformed headers */
	NF_REASON_REVISION_DENY = 4,  /* established flow cut by a newer policy revision */
	NF_REASON_PREFILTER = 5,      /* XDP deny-CIDR prefilter */
	NF_REASON_RELATED = 6,        /* passed: ICMP error about a tracked flow */
	NF_REASON_MAX = 7,
};

/* Global config (ARRAY, one element). Written by the agent; the tunnel flag
 * is set only after the routes exist, so marked packets are never black-holed.
 * OFF4/OFF6 exempt one family from the tunnel while its gateway is silent (the
 * other family stays tunnelled); clear, they leave the mode flag as it was. */
enum nf_cfg_flag {
	NF_CFG_F_TUNNEL_FWMARK = 1u << 0,
	NF_CFG_F_TUNNEL_DIRECT = 1u << 1,
	NF_CFG_F_TUNNEL_OFF4 = 1u << 2,
	NF_CFG_F_TUNNEL_OFF6 = 1u << 3,
};

struct nf_config {
	__u32 layout_version;   /* NF_LAYOUT_VERSION of the agent that wrote it */
	__u32 flags;            /* enum nf_cfg_flag bits */
	__u32 tunnel_mark;      /* fwmark for the policy-routing mode */
	__u32 tunnel_mark_mask;
	__u32 uplink_ifindex;   /* direct mode: redirect target */
	__u32 events_per_sec;   /* drop events per endpoint per second (0 = none) */
	__u8 gateway6[16];      /* direct mode next hop, IPv6 (zero = none) */
	__u8 gateway4[4];       /* direct mode next hop, IPv4, network order (zero = none) */
	__u32 _pad;
};

/* Drop event on the ring buffer. */
struct nf_event {
	__u64 ts_ns;
	__u32 ep_id;
	__u32 ifindex;
	__u32 table;
	__u32 policy_id;
	__u32 rule_id;
	__u16 rule_index;
	__u8 dir;      /* enum nf_dir */
	__u8 proto;
	__u8 reason;   /* enum nf_reason */
	__u8 action;   /* enum nf_action */
	__u16 sport;   /* network order */
	__u16 dport;   /* network order */
	__u16 _pad;
	__u8 saddr[16];
	__u8 daddr[16];
};

/* Event rate limit state per endpoint (LRU hash keyed by ep_id). */
struct nf_ratelimit {
	__u64 window_start_ns;
	__u32 count;
	__u32 _pad;
};

#endif /* NETFENCE_H */
