/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * The classifier's own per-packet state: never on the wire, so not in netfence.h.
 */
#ifndef NF_TYPES_H
#define NF_TYPES_H

#include "netfence.h"
#include "parse.h"

/* What a drop was about (the packet itself comes from struct nf_pkt). */
struct nf_drop {
	__u32 ep_id;
	__u32 table;
	__u32 policy_id;
	__u32 rule_id;
	__u32 rule_index;
	__u8 dir;
	__u8 reason;
	__u8 action;
	__u8 _pad;
	__u16 stats_slot; /* the endpoint's (nf_count_ep) */
	__u16 _pad2;
};

/* Per-packet state of the hook roles, kept off the stack (map nf_scratch): the
 * verifier allows 512 bytes for the deepest call chain (a role, nf_enforce,
 * nf_policy_eval and its bpf_loop step). Per CPU, reset for each packet (rel when
 * used); tc programs do not nest on a CPU (tc ingress runs in softirq, tc egress
 * with bottom halves disabled). */
struct nf_scratch {
	struct nf_pkt p;
	struct nf_pkt rel; /* the embedded flow of an ICMP error */
	struct nf_drop d;
	struct nf_ct_key k; /* conntrack key space of nf_enforce */
	/* NF_CT_F_* of the entry nf_enforce found this packet to be a reply of, else 0 */
	__u8 reply_ct_flags;
};

#endif /* NF_TYPES_H */
