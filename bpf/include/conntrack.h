/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Conntrack: an LRU hash of flows as first allowed, keyed by endpoint, policy
 * direction and 5-tuple. A packet hits either its own direction's entry
 * (established) or the reversed tuple in the opposite direction (reply). The
 * LRU ages entries out; TCP FIN/RST are not tracked.
 */
#ifndef NF_CONNTRACK_H
#define NF_CONNTRACK_H

#include <bpf/bpf_helpers.h>
#include "netfence.h"
#include "parse.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct nf_ct_key);
	__type(value, struct nf_ct_val);
	__uint(max_entries, 131072);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nf_ct SEC(".maps");

#define NF_CT_RULE_DEFAULT 0xffff

static __always_inline void nf_ct_key_fwd(struct nf_ct_key *k, __u32 ep_id, __u8 dir,
					  const struct nf_pkt *p)
{
	k->ep_id = ep_id;
	k->dir = dir;
	k->proto = p->proto;
	k->_pad = 0;
	__builtin_memcpy(k->saddr, p->saddr, 16);
	__builtin_memcpy(k->daddr, p->daddr, 16);
	k->sport = p->sport;
	k->dport = p->dport;
}

/* The key a reply to this packet's flow was created under. */
static __always_inline void nf_ct_key_reply(struct nf_ct_key *k, __u32 ep_id, __u8 dir,
					    const struct nf_pkt *p)
{
	k->ep_id = ep_id;
	k->dir = dir ^ 1;
	k->proto = p->proto;
	k->_pad = 0;
	__builtin_memcpy(k->saddr, p->daddr, 16);
	__builtin_memcpy(k->daddr, p->saddr, 16);
	k->sport = p->dport;
	k->dport = p->sport;
}

static __always_inline void nf_ct_create(const struct nf_ct_key *k, __u32 revision, __u32 rule,
					 __u8 flags)
{
	struct nf_ct_val v = {
		.last_seen_ns = bpf_ktime_get_ns(),
		.revision = revision,
		.rule = rule > NF_CT_RULE_DEFAULT ? NF_CT_RULE_DEFAULT : rule,
		.flags = flags,
	};

	bpf_map_update_elem(&nf_ct, k, &v, BPF_ANY);
}

#endif /* NF_CONNTRACK_H */
