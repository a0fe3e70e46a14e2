/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Conntrack: an LRU hash of flows as first allowed, keyed by endpoint, protocol and
 * the flow's two ends in ascending order, so both directions of a flow find its one
 * entry with one lookup; the value says which end opened it and in which policy
 * direction, so a packet is either one of the flow's own (established) or a reply.
 *
 * Lifetime: open flows live until the LRU evicts them. A TCP flow that closes
 * (RST, or FIN from both sides) gets NF_CT_CLOSE_TIMEOUT_NS past its last packet
 * (expires_ns) for the closing handshake; after that, or at once for a new SYN
 * on the tuple, its packets are evaluated as a new flow, so a reused 4-tuple
 * meets the current policy. A stale entry a packet finds is rewritten in place when
 * that packet opens the flow anew, else deleted; untouched, it is among the LRU's
 * first victims.
 */
#ifndef NF_CONNTRACK_H
#define NF_CONNTRACK_H

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "netfence.h"
#include "parse.h"
#include "maps.h"

/* Conntrack time: CLOCK_MONOTONIC at tick resolution. Its timeouts are seconds, and
 * the coarse clock reads a variable where bpf_ktime_get_ns reads the clock source
 * (tens of ns per packet in a VM). */
static __always_inline __u64 nf_ct_now(void)
{
	return bpf_ktime_get_coarse_ns();
}

/* Byte order of two addresses (memcmp order, as userspace compares them): 1 if a > b. */
static __always_inline int nf_addr_gt(const __u8 *a, const __u8 *b, int *eq)
{
	__u64 a0, a1, b0, b1;

	__builtin_memcpy(&a0, a, 8);
	__builtin_memcpy(&a1, a + 8, 8);
	__builtin_memcpy(&b0, b, 8);
	__builtin_memcpy(&b1, b + 8, 8);
	a0 = bpf_be64_to_cpu(a0);
	b0 = bpf_be64_to_cpu(b0);
	a1 = bpf_be64_to_cpu(a1);
	b1 = bpf_be64_to_cpu(b1);
	*eq = a0 == b0 && a1 == b1;
	return a0 != b0 ? a0 > b0 : a1 > b1;
}

/*
 * The conntrack key of packet p's flow at endpoint ep_id: its two ends (address,
 * port) in ascending order. Returns NF_CT_O_SRC_HI when p's source is the hi end.
 */
static __always_inline __u8 nf_ct_key_pkt(struct nf_ct_key *k, __u32 ep_id, const struct nf_pkt *p)
{
	int eq, src_hi = nf_addr_gt(p->saddr, p->daddr, &eq);

	if (eq)
		src_hi = bpf_ntohs(p->sport) > bpf_ntohs(p->dport);
	k->ep_id = ep_id;
	k->_pad0 = 0;
	k->proto = p->proto;
	k->_pad = 0;
	if (src_hi) {
		__builtin_memcpy(k->addr_lo, p->daddr, 16);
		__builtin_memcpy(k->addr_hi, p->saddr, 16);
		k->port_lo = p->dport;
		k->port_hi = p->sport;
		return NF_CT_O_SRC_HI;
	}
	__builtin_memcpy(k->addr_lo, p->saddr, 16);
	__builtin_memcpy(k->addr_hi, p->daddr, 16);
	k->port_lo = p->sport;
	k->port_hi = p->dport;
	return 0;
}

/* How packet p (orientation src_hi from nf_ct_key_pkt, policy direction dir) relates to
 * the flow of entry cv: 0 = one of its own packets, 1 = a reply, -1 = neither (the same
 * ends seen the other way round in the same direction: no packet of this flow). */
static __always_inline int nf_ct_side(const struct nf_ct_val *cv, __u8 dir, __u8 src_hi)
{
	int same_dir = !!(cv->orig & NF_CT_O_EGRESS) == (dir == NF_DIR_EGRESS);
	int same_end = (cv->orig & NF_CT_O_SRC_HI) == src_hi;

	if (same_dir && same_end)
		return 0;
	return !same_dir && !same_end ? 1 : -1;
}

/* A new entry under key k (nf_ct_key_pkt of p, orientation src_hi) for packet p's flow,
 * first seen in direction dir; a flow that starts with RST starts closing. `stale`: the
 * key's own entry a lookup found stale, rewritten in place: an update would take a
 * fresh element from the LRU (its global lock, an eviction once the map is full) and
 * free the old one, for every tuple reused (a client's ephemeral ports come round
 * within the close timeout). */
static __always_inline void nf_ct_create(const struct nf_ct_key *k, __u8 src_hi, const struct nf_pkt *p,
					 __u8 dir, __u32 revision, __u32 rule, __u8 flags,
					 struct nf_ct_val *stale)
{
	struct nf_ct_val v = {
		.last_seen_ns = nf_ct_now(),
		.revision = revision,
		.rule = rule > NF_CT_RULE_DEFAULT ? NF_CT_RULE_DEFAULT : rule,
		.flags = flags,
	};

	v.orig = src_hi | (dir == NF_DIR_EGRESS ? NF_CT_O_EGRESS : 0);
	if (p->tcp_flags & NF_TCP_RST) {
		v.flags |= NF_CT_F_CLOSING;
		v.expires_ns = v.last_seen_ns + NF_CT_CLOSE_TIMEOUT_NS;
	}
	if (stale)
		*stale = v;
	else
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

/* last_seen_ns: the entry's creation, then (to NF_CT_SEEN_GRAIN_NS: a write per packet
 * bounces the entry's cache line between the CPUs of both ends) its packets that read
 * the clock: those of a closing flow, exact there (the deadline, expires_ns, follows
 * them with the same `now`). An open flow's packets leave it: nothing reads it but
 * people (bpftool), and the clock read was ~5 % of an established packet. */
#define NF_CT_SEEN_GRAIN_NS 1000000000ULL

static __always_inline void nf_ct_touch(struct nf_ct_val *cv, __u64 now)
{
	if ((cv->flags & NF_CT_F_CLOSING) || now - cv->last_seen_ns >= NF_CT_SEEN_GRAIN_NS)
		cv->last_seen_ns = now;
}

#endif /* NF_CONNTRACK_H */
