/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Enforcement at one endpoint in one policy direction: conntrack first (an
 * established flow or a reply passes; an entry of another policy revision is
 * re-evaluated), then the endpoint's table (policy.h); related ICMP errors; the
 * deferred egress check of a local source pod; drops (counters and events).
 */
#ifndef NF_ENFORCE_H
#define NF_ENFORCE_H

#include <bpf/bpf_helpers.h>
#include <linux/pkt_cls.h>
#include "netfence.h"
#include "parse.h"
#include "maps.h"
#include "types.h"
#include "node.h"
#include "policy.h"
#include "conntrack.h"
#include "events.h"

static __always_inline void nf_drop_from_verdict(struct nf_drop *d, const struct nf_endpoint *ep,
						 __u8 dir, __u32 table, const struct nf_verdict *v,
						 __u8 reason)
{
	d->ep_id = ep->id;
	d->stats_slot = ep->stats_slot;
	d->dir = dir;
	d->table = table;
	d->policy_id = v->policy_id;
	d->rule_id = v->rule_id;
	d->rule_index = v->rule_index;
	d->action = v->action;
	d->reason = reason;
}

/* Evaluate the endpoint's table of direction `dir` for packet p's protocol and
 * `port` toward `peer`; table 0 = default allow. */
static __always_inline int nf_eval(const struct nf_endpoint *ep, __u8 dir, const __u8 *peer,
				   const struct nf_pkt *p, __u16 port, struct nf_verdict *v)
{
	struct nf_query q = {};

	q.table = ep->table[dir & 1];
	if (q.table == NF_TABLE_NONE) {
		v->rule_index = NF_RULE_DEFAULT;
		v->action = NF_ACT_ALLOW;
		v->tier = NF_TIER_DEFAULT;
		return NF_ACT_ALLOW;
	}
	q.chunks = ep->chunks[dir & 1];
	q.bytes = p->len;
	q.port = port;
	q.proto = p->proto;
	__builtin_memcpy(q.peer, peer, 16);
	return nf_policy_eval(&q, v);
}

/* A conntrack entry of another policy revision: re-evaluate its flow in the
 * direction it was created in. `reply` = the packet is a reply of that flow. */
static __always_inline int nf_ct_revalidate(const struct nf_endpoint *ep, const struct nf_ct_key *k,
					    struct nf_ct_val *cv, const struct nf_pkt *p, int reply,
					    struct nf_drop *d)
{
	struct nf_verdict v = {};
	__u8 odir = cv->orig & NF_CT_O_EGRESS ? NF_DIR_EGRESS : NF_DIR_INGRESS;
	/* the flow's original destination port; the peer is the far side of it: its
	 * destination for an egress flow, its source for an ingress one */
	__u16 port = p->has_ports ? (reply ? p->sport : p->dport) : 0;
	const __u8 *peer = (odir == NF_DIR_EGRESS) != !!reply ? p->daddr : p->saddr;

	/* deferred: the backend side is checked after DNAT, per packet of the flow;
	 * privileged established flows (node lockout safety) outlive any revision */
	if ((cv->flags & NF_CT_F_DEFERRED) || (ep->flags & NF_EP_F_KEEP_ESTABLISHED)) {
		cv->revision = ep->revision;
		return 1;
	}
	if (nf_eval(ep, odir, peer, p, port, &v) != NF_ACT_ALLOW) {
		bpf_map_delete_elem(&nf_ct, k);
		nf_drop_from_verdict(d, ep, odir, ep->table[odir & 1], &v, NF_REASON_REVISION_DENY);
		return 0;
	}
	cv->revision = ep->revision;
	cv->rule = v.rule_index > NF_CT_RULE_DEFAULT ? NF_CT_RULE_DEFAULT : v.rule_index;
	return 1;
}

enum nf_ct_rc {
	NF_CT_MISS = 0, /* no live entry: evaluate the packet */
	NF_CT_HIT = 1,  /* a flow conntrack knows: pass */
	NF_CT_CUT = 2,  /* its flow failed re-evaluation under a new revision: drop (*d) */
};

/* What p is to the flow nf_ct_lookup finds. */
enum nf_ct_use {
	NF_CT_USE_PACKET = 0,  /* one of its packets: a hit follows the flow (reply seen, TCP close) */
	NF_CT_USE_RELATED = 1, /* an ICMP error's embedded flow: look up only */
};

/*
 * Conntrack for packet (or embedded flow) p at endpoint ep in policy direction
 * `dir`: one lookup finds the flow's entry whichever way p goes. A hit refreshes
 * the entry, re-evaluates it under a new revision and, for NF_CT_USE_PACKET,
 * follows TCP close and sets `set_flags` (NF_CT_F_*) when p goes the flow's own
 * way. A stale entry (nf_ct_stale) counts as none, like an entry p is no packet of
 * (nf_ct_side): it is handed to the caller in *stale for reuse when `stale` is
 * given, else deleted. On a hit of a reply, the entry's flags go to *reply_flags
 * when given. *k: p's key at ep and src_hi its orientation (nf_ct_key_pkt).
 */
static __always_inline int nf_ct_lookup(const struct nf_endpoint *ep, const struct nf_pkt *p, __u8 dir,
					enum nf_ct_use use, __u8 set_flags, const struct nf_ct_key *k,
					__u8 src_hi, struct nf_drop *d, struct nf_ct_val **stale,
					__u8 *reply_flags)
{
	struct nf_ct_val *cv = bpf_map_lookup_elem(&nf_ct, k);
	__u64 now;
	int reply;

	if (!cv)
		return NF_CT_MISS;
	reply = nf_ct_side(cv, dir, src_hi);
	if (reply < 0)
		return NF_CT_MISS;
	/* the clock only where a deadline is due or set: an open flow's packets skip it */
	now = 0;
	if (cv->expires_ns || (cv->flags & NF_CT_F_CLOSING) ||
	    (p->proto == IPPROTO_TCP && (p->tcp_flags & (NF_TCP_FIN | NF_TCP_RST))))
		now = nf_ct_now();
	if (nf_ct_stale(cv, p, now)) {
		if (stale)
			*stale = cv;
		else
			bpf_map_delete_elem(&nf_ct, k);
		return NF_CT_MISS;
	}
	if (cv->revision != ep->revision && !nf_ct_revalidate(ep, k, cv, p, reply, d))
		return NF_CT_CUT;
	if (use == NF_CT_USE_PACKET) {
		/* written only on a change: both ends' CPUs hit the same entry */
		if (reply && !(cv->flags & NF_CT_F_SEEN_REPLY))
			cv->flags |= NF_CT_F_SEEN_REPLY;
		else if (!reply && (cv->flags & set_flags) != set_flags)
			cv->flags |= set_flags;
		if (p->proto == IPPROTO_TCP)
			nf_ct_tcp_close(cv, p->tcp_flags, reply, now);
	}
	if (now)
		nf_ct_touch(cv, now);
	if (reply && reply_flags)
		*reply_flags = cv->flags;
	return NF_CT_HIT;
}

/* Conntrack of an ICMP error's embedded flow `rel` (nf_parse_related) at endpoint
 * ep in direction `dir`: enum nf_ct_rc. Global and apart from nf_enforce: the
 * verifier's call-chain stack budget holds either, not both in one frame. */
__noinline int nf_related(const struct nf_endpoint *ep, const struct nf_pkt *rel, __u32 dir,
			  struct nf_drop *d)
{
	struct nf_ct_key k;
	__u8 src_hi;

	if (!ep || !rel || !d || !nf_has_tables(ep))
		return NF_CT_MISS;
	src_hi = nf_ct_key_pkt(&k, ep->id, rel);
	return nf_ct_lookup(ep, rel, dir & 1, NF_CT_USE_RELATED, 0, &k, src_hi, d, NULL, NULL);
}

/* nf_enforce options (a flags word: a global function takes at most five arguments) */
#define NF_ENF_SVC (1u << 0)       /* destination is a service address: defer to after DNAT */
#define NF_ENF_NO_TUNNEL (1u << 1) /* remember the flow as NF_CT_F_NO_TUNNEL (even without tables) */
#define NF_ENF_REPLY_FLAGS (1u << 2) /* look the flow up even without tables, for s->reply_ct_flags */

/*
 * Policy of endpoint `ep` in direction `dir` for this packet, conntrack first.
 * Returns 1 to allow, 0 to drop (with *d filled in). `opts` (NF_ENF_*):
 * NF_ENF_SVC allows and leaves the check to the hooks after DNAT;
 * NF_ENF_NO_TUNNEL flags the flow's entry so its replies skip the tunnel;
 * NF_ENF_REPLY_FLAGS asks for the flags of the flow p replies to (the tunnel and
 * local delivery leave replies of NF_CT_F_NO_TUNNEL flows to the stack).
 * A global function: verified once for all its call sites.
 */
__noinline int nf_enforce(const struct nf_endpoint *ep, const struct nf_pkt *p, __u32 dir,
			  __u32 opts, struct nf_drop *d)
{
	__u8 ct_flags = opts & NF_ENF_NO_TUNNEL ? NF_CT_F_NO_TUNNEL : 0;
	struct nf_verdict v = {};
	struct nf_scratch *s = nf_scratch_of_cpu();
	struct nf_ct_val *stale = NULL; /* the key's entry, found stale: rewritten, not re-added */
	__u8 src_hi = 0;
	int rc;

	if (!ep || !p || !d || !s)
		return 1;
	dir &= 1;
	/* no policy either way and no flag to keep: nothing to remember */
	if (!nf_has_tables(ep) && !ct_flags) {
		if ((opts & NF_ENF_REPLY_FLAGS) && (p->ct & NF_PKT_CT_LOOKUP)) {
			src_hi = nf_ct_key_pkt(&s->k, ep->id, p);
			nf_ct_lookup(ep, p, dir, NF_CT_USE_PACKET, 0, &s->k, src_hi, d, NULL,
				     &s->reply_ct_flags);
		}
		return 1;
	}

	/* one key for the lookup and the entry a miss creates */
	if (p->ct & (NF_PKT_CT_LOOKUP | NF_PKT_CT_CREATE))
		src_hi = nf_ct_key_pkt(&s->k, ep->id, p);
	if (p->ct & NF_PKT_CT_LOOKUP) {
		rc = nf_ct_lookup(ep, p, dir, NF_CT_USE_PACKET, ct_flags, &s->k, src_hi, d,
				  p->ct & NF_PKT_CT_CREATE ? &stale : NULL, &s->reply_ct_flags);
		if (rc != NF_CT_MISS)
			return rc == NF_CT_HIT;
	}

	if (opts & NF_ENF_SVC) {
		if (p->ct & NF_PKT_CT_CREATE)
			nf_ct_create(&s->k, src_hi, p, dir, ep->revision, NF_CT_RULE_DEFAULT, NF_CT_F_DEFERRED, stale);
		return 1;
	}

	if (nf_eval(ep, dir, dir == NF_DIR_EGRESS ? p->daddr : p->saddr, p, p->policy_port, &v) !=
	    NF_ACT_ALLOW) {
		if (stale)
			bpf_map_delete_elem(&nf_ct, &s->k);
		nf_drop_from_verdict(d, ep, dir, ep->table[dir], &v, v.reason);
		return 0;
	}
	if (p->ct & NF_PKT_CT_CREATE)
		nf_ct_create(&s->k, src_hi, p, dir, ep->revision, v.rule_index, ct_flags, stale);
	return 1;
}

/* nf_enforce, except that an ICMP error whose embedded flow `rel` conntrack knows
 * passes as related: cut like the flow's own packets by a new revision that denies
 * the flow. An error about no known flow is an ICMP packet like any other. */
static __always_inline int nf_decide(const struct nf_endpoint *ep, const struct nf_pkt *p,
				     const struct nf_pkt *rel, __u32 dir, __u32 opts, struct nf_drop *d)
{
	if (rel) {
		int rc = nf_related(ep, rel, dir, d);

		if (rc == NF_CT_HIT)
			nf_count_reason(NF_REASON_RELATED, p->len);
		if (rc != NF_CT_MISS)
			return rc == NF_CT_HIT;
	}
	return nf_enforce(ep, p, dir, opts, d);
}

/* Deferred egress check of the packet's source `src` = nf_local(saddr), when a
 * local pod (see the top of netfence.bpf.c); `rel` as for nf_decide. */
static __always_inline int nf_check_source_pod(const struct nf_local *src, const struct nf_pkt *p,
					       const struct nf_pkt *rel, struct nf_drop *d)
{
	const struct nf_endpoint *sep;

	if (!src || src->kind != NF_LOCAL_POD)
		return 1;
	sep = nf_endpoint_of(src->ifindex);
	if (!sep || !(sep->flags & NF_EP_F_POD))
		return 1;
	return nf_decide(sep, p, rel, NF_DIR_EGRESS, 0, d);
}

/* Drop the packet decided in *d: counted on its endpoint and reason, an event.
 * Global: one copy for the drop sites of every role. */
__noinline int nf_do_drop(const struct nf_drop *d, const struct nf_pkt *p, __u32 ifindex)
{
	const struct nf_config *cfg = nf_get_config();

	if (!d || !p)
		return TC_ACT_SHOT;
	nf_count_ep(d->stats_slot, d->dir, NF_EP_DENIED, p->len);
	nf_emit_drop(d, p, ifindex, cfg ? cfg->events_per_sec : 0);
	return TC_ACT_SHOT;
}

/* A packet whose headers do not parse (NF_PARSE_MALFORMED) at endpoint ep in
 * direction `dir`: dropped where a table applies, else left to the stack. */
static __always_inline int nf_drop_malformed(const struct nf_endpoint *ep, __u8 dir,
					     struct nf_scratch *s, __u32 ifindex)
{
	struct nf_drop *d = &s->d;

	if (ep->table[dir & 1] == NF_TABLE_NONE)
		return TC_ACT_OK;
	d->ep_id = ep->id;
	d->stats_slot = ep->stats_slot;
	d->dir = dir;
	d->table = ep->table[dir & 1];
	d->rule_index = NF_RULE_DEFAULT;
	d->reason = NF_REASON_MALFORMED;
	return nf_do_drop(d, &s->p, ifindex);
}

/* Enforce and count an allowed packet: 1 if allowed, else the drop is done. */
static __always_inline int nf_allow(const struct nf_endpoint *ep, struct nf_scratch *s,
				    const struct nf_pkt *rel, __u8 dir, __u32 opts, __u32 ifindex)
{
	if (!nf_decide(ep, &s->p, rel, dir, opts, &s->d)) {
		nf_do_drop(&s->d, &s->p, ifindex);
		return 0;
	}
	nf_count_ep(ep->stats_slot, dir, NF_EP_ALLOWED, s->p.len);
	return 1;
}

#endif /* NF_ENFORCE_H */
