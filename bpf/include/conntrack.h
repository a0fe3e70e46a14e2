/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Conntrack: an LRU hash of flows as first allowed, keyed by endpoint, policy
 * direction and 5-tuple. A packet hits either its own direction's entry
 * (established) or the reversed tuple in the opposite direction (reply).
 *
 * Lifetime: open flows live until the LRU evicts them. A TCP flow that closes
 * (RST, or FIN from both sides) gets NF_CT_CLOSE_TIMEOUT_NS past its last packet
 * (expires_ns) for the closing handshake; after that, or at once for a new SYN
 * on the tuple, its packets are evaluated as a new flow, so a reused 4-tuple
 * meets the current policy. Expired entries are deleted when a packet finds them;
 * untouched, they are the LRU's first victims.
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

static __always_inline void nf_ct_key_set(struct nf_ct_key *k, __u32 ep_id, __u8 dir, __u8 proto,
					  const __u8 *saddr, const __u8 *daddr, __u16 sport, __u16 dport)
{
	k->ep_id = ep_id;
	k->dir = dir;
	k->proto = proto;
	k->_pad = 0;
	__builtin_memcpy(k->saddr, saddr, 16);
	__builtin_memcpy(k->daddr, daddr, 16);
	k->sport = sport;
	k->dport = dport;
}

static __always_inline void nf_ct_key_fwd(struct nf_ct_key *k, __u32 ep_id, __u8 dir,
					  const struct nf_pkt *p)
{
	nf_ct_key_set(k, ep_id, dir, p->proto, p->saddr, p->daddr, p->sport, p->dport);
}

/* The key a reply to this packet's flow was created under. */
static __always_inline void nf_ct_key_reply(struct nf_ct_key *k, __u32 ep_id, __u8 dir,
					    const struct nf_pkt *p)
{
	nf_ct_key_set(k, ep_id, dir ^ 1, p->proto, p->daddr, p->saddr, p->dport, p->sport);
}

/* A new entry for packet p's flow; a flow that starts with RST starts closing. */
static __always_inline void nf_ct_create(const struct nf_ct_key *k, const struct nf_pkt *p,
					 __u32 revision, __u32 rule, __u8 flags)
{
	struct nf_ct_val v = {
		.last_seen_ns = bpf_ktime_get_ns(),
		.revision = revision,
		.rule = rule > NF_CT_RULE_DEFAULT ? NF_CT_RULE_DEFAULT : rule,
		.flags = flags,
	};

	if (p->tcp_flags & NF_TCP_RST) {
		v.flags |= NF_CT_F_CLOSING;
		v.expires_ns = v.last_seen_ns + NF_CT_CLOSE_TIMEOUT_NS;
	}
	bpf_map_update_elem(&nf_ct, k, &v, BPF_ANY);
}

/* The entry no longer stands for a live flow: past its deadline, or closing and
 * this packet opens the tuple anew (SYN without ACK). */
static __always_inline int nf_ct_stale(const struct nf_ct_val *cv, const struct nf_pkt *p, __u64 now)
{
	if (cv->expires_ns && now >= cv->expires_ns)
		return 1;
	return (cv->flags & NF_CT_F_CLOSING) && (p->tcp_flags & (NF_TCP_SYN | NF_TCP_ACK)) == NF_TCP_SYN;
}

/* TCP close tracking on a hit: `reply` = the packet comes from the side that did
 * not open the flow. A closing entry's deadline follows its last packet. */
static __always_inline void nf_ct_tcp_close(struct nf_ct_val *cv, __u8 tcp_flags, int reply, __u64 now)
{
	const __u8 both = NF_CT_F_FIN_FWD | NF_CT_F_FIN_REPLY;
	__u8 f = cv->flags;

	if (tcp_flags & NF_TCP_FIN)
		f |= reply ? NF_CT_F_FIN_REPLY : NF_CT_F_FIN_FWD;
	if ((tcp_flags & NF_TCP_RST) || (f & both) == both)
		f |= NF_CT_F_CLOSING;
	if (f != cv->flags)
		cv->flags = f;
	if (f & NF_CT_F_CLOSING)
		cv->expires_ns = now + NF_CT_CLOSE_TIMEOUT_NS;
}

/* last_seen_ns is kept to NF_CT_SEEN_GRAIN_NS (a write per packet bounces the entry's
 * cache line between the CPUs of both ends); exact while closing, where the deadline
 * (expires_ns, written with the same `now`) follows it. */
#define NF_CT_SEEN_GRAIN_NS 1000000000ULL

static __always_inline void nf_ct_touch(struct nf_ct_val *cv, __u64 now)
{
	if ((cv->flags & NF_CT_F_CLOSING) || now - cv->last_seen_ns >= NF_CT_SEEN_GRAIN_NS)
		cv->last_seen_ns = now;
}

#endif /* NF_CONNTRACK_H */
