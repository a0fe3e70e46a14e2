// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * netfence tc classifier: one object serves every interface; per-endpoint
 * state lives in maps keyed by ifindex (bpf/include/netfence.h).
 *
 * Hook -> policy direction:
 *   pod endpoint:  tc ingress = traffic FROM the pod -> its EGRESS table, peer = destination
 *                  tc egress  = traffic TO the pod   -> its INGRESS table, peer = source
 *   host endpoint: tc ingress = traffic TO a node address   -> INGRESS table
 *                  tc egress  = traffic FROM a node address -> EGRESS table
 *                  (anything else is forwarded traffic and passes)
 *
 * Services (kube-proxy DNAT happens after the pod's tc ingress hook):
 *   At the client pod's tc ingress, a destination inside nf_svc_cidrs is not
 *   evaluated: a conntrack entry flagged NF_CT_F_DEFERRED is created so the
 *   de-DNATed replies (source = service address) pass, and the packet goes on.
 *   After DNAT the packet leaves through either the backend pod's veth (tc
 *   egress, local backend) or a host interface (tc egress, remote backend).
 *   Both hooks run the deferred check (while NF_EP_F_SRC_CHECK says a local pod
 *   has an egress table): when the source address is a local pod
 *   (nf_local_addrs kind POD -> its ifindex -> nf_endpoints) and the flow is
 *   not established for that source endpoint, the source's EGRESS table is
 *   evaluated against the post-DNAT destination (creating the source's
 *   conntrack entry on allow, dropping on deny), then the destination's own
 *   policy applies. Direct pod-to-pod flows are already established for the
 *   source by its own hook, so the check costs one conntrack lookup for them.
 *
 * Related ICMP errors: an error whose embedded header belongs to a flow in
 * conntrack (fragmentation needed / packet too big for PMTU discovery, port
 * unreachable, ...) passes at every hook that knows the flow, under the flow's
 * revision rule, and is counted as NF_REASON_RELATED; any other ICMP error is an
 * ordinary ICMP packet for the policy.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_packet.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "netfence.h"
#include "parse.h"
#include "policy.h"
#include "conntrack.h"
#include "events.h"
#include "btf_pins.h"

#define NF_AF_INET 2
#define NF_AF_INET6 10

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct nf_endpoint);
	__uint(max_entries, 16384);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nf_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct nf_addr);
	__type(value, struct nf_local);
	__uint(max_entries, 32768);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nf_local_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct nf_addr_lpm_key);
	__type(value, __u8);
	__uint(max_entries, 256);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nf_svc_cidrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct nf_config);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nf_config SEC(".maps");

/* LRU: ids of endpoints that are gone stop being touched and age out, so the map
 * never fills up with them. Sized for 4096 endpoints with traffic (x 2 directions
 * x 2 verdicts), not for every nf_endpoints entry: values are per CPU and
 * preallocated (16 B x CPUs each); past that the least recently active age out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__type(key, struct nf_ep_stats_key);
	__type(value, struct nf_counter);
	__uint(max_entries, 16384);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nf_ep_stats SEC(".maps");

/* Endpoints, by id & NF_STACK_ARRIVALS_MASK, that have had a flow flagged
 * NF_CT_F_NO_TUNNEL (it reached them through the node's stack). Only their tc
 * ingress looks up conntrack without tables, to keep such flows' replies on the
 * stack: the rest skip that lookup. Never cleared; a shared slot costs a lookup. */
#define NF_STACK_ARRIVALS_MASK 0xffff
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u8);
	__uint(max_entries, NF_STACK_ARRIVALS_MASK + 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nf_stack_arrivals SEC(".maps");

static __always_inline __u8 *nf_stack_arrival(const struct nf_endpoint *ep)
{
	__u32 slot = ep->id & NF_STACK_ARRIVALS_MASK;

	return bpf_map_lookup_elem(&nf_stack_arrivals, &slot);
}

/* Per-packet state of nf_handle, kept off the stack: the verifier allows 512 bytes
 * for the deepest call chain (nf_handle, nf_enforce, nf_policy_eval and its bpf_loop
 * step). Per CPU, reset for each packet (rel when used); tc programs do not nest on
 * a CPU (tc ingress runs in softirq, tc egress with bottom halves disabled). */
struct nf_scratch {
	struct nf_pkt p;
	struct nf_pkt rel; /* the embedded flow of an ICMP error */
	struct nf_drop d;
	struct nf_ct_key k; /* conntrack key space of nf_enforce */
	/* NF_CT_F_* of the entry nf_enforce found this packet to be a reply of, else 0 */
	__u8 reply_ct_flags;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct nf_scratch);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME); /* like every map: a reload reuses it */
} nf_scratch SEC(".maps");

static __always_inline struct nf_scratch *nf_scratch_of_cpu(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&nf_scratch, &zero);
}

static __always_inline struct nf_scratch *nf_get_scratch(void)
{
	struct nf_scratch *s = nf_scratch_of_cpu();

	if (s) {
		__builtin_memset(&s->p, 0, sizeof(s->p));
		__builtin_memset(&s->d, 0, sizeof(s->d));
		s->reply_ct_flags = 0;
	}
	return s;
}

static __always_inline const struct nf_config *nf_get_config(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&nf_config, &zero);
}

static __always_inline int nf_in_svc_cidr(const __u8 *addr)
{
	struct nf_addr_lpm_key k = { .prefixlen = 128 };

	__builtin_memcpy(k.addr, addr, 16);
	return bpf_map_lookup_elem(&nf_svc_cidrs, &k) != NULL;
}

static __always_inline const struct nf_local *nf_local(const __u8 *addr)
{
	return bpf_map_lookup_elem(&nf_local_addrs, addr);
}

/* The local pod p is addressed to when it is another one than that of `ifindex`. */
static __always_inline const struct nf_local *nf_other_local_pod(const struct nf_pkt *p, __u32 ifindex)
{
	const struct nf_local *l = nf_local(p->daddr);

	return l && l->kind == NF_LOCAL_POD && l->ifindex != ifindex ? l : NULL;
}

static __always_inline int nf_is_local_kind(const __u8 *addr, __u32 kind)
{
	const struct nf_local *l = nf_local(addr);

	return l && l->kind == kind;
}

static __always_inline void nf_drop_from_verdict(struct nf_drop *d, const struct nf_endpoint *ep,
						 __u8 dir, __u32 table, const struct nf_verdict *v,
						 __u8 reason)
{
	d->ep_id = ep->id;
	d->dir = dir;
	d->table = table;
	d->policy_id = v->policy_id;
	d->rule_id = v->rule_id;
	d->rule_index = v->rule_index;
	d->action = v->action;
	d->reason = reason;
}

/* Count a decided packet on its endpoint. */
static __always_inline int nf_count_ep(__u32 ep_id, __u32 dir, __u32 verdict, __u32 bytes)
{
	struct nf_ep_stats_key k = {};

	k.ep_id = ep_id;
	k.dir = dir;
	k.verdict = verdict;
	return nf_count_key(&nf_ep_stats, &k, bytes);
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

/* nf_ct_lookup `how`: bit 0 = enum nf_dir, NF_CTL_RELATED, NF_CT_F_* << NF_CTL_SET_SHIFT */
#define NF_CTL_RELATED (1u << 1) /* p is an ICMP error's embedded flow: look up only */
#define NF_CTL_SET_SHIFT 8       /* flags to set on a hit of the flow's own direction */

/*
 * Conntrack for packet (or embedded flow) p at endpoint ep: one lookup finds the
 * flow's entry whichever way p goes. A hit refreshes the entry, re-evaluates it
 * under a new revision and follows TCP close; a stale entry (nf_ct_stale) counts
 * as none, like an entry p is no packet of (nf_ct_side): it is handed to the caller
 * in *stale for reuse when `stale` is given, else deleted. On a hit of a reply,
 * the entry's flags go to *reply_flags when given.
 * *k: p's key at ep and src_hi its orientation (nf_ct_key_pkt).
 */
static __always_inline int nf_ct_lookup(const struct nf_endpoint *ep, const struct nf_pkt *p,
					__u32 how, const struct nf_ct_key *k, __u8 src_hi,
					struct nf_drop *d, struct nf_ct_val **stale, __u8 *reply_flags)
{
	__u8 dir = how & 1;
	struct nf_ct_val *cv = bpf_map_lookup_elem(&nf_ct, k);
	__u64 now;
	int reply;

	if (!cv)
		return NF_CT_MISS;
	reply = nf_ct_side(cv, dir, src_hi);
	if (reply < 0)
		return NF_CT_MISS;
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
	if (!(how & NF_CTL_RELATED)) {
		/* written only on a change: both ends' CPUs hit the same entry */
		if (reply && !(cv->flags & NF_CT_F_SEEN_REPLY))
			cv->flags |= NF_CT_F_SEEN_REPLY;
		else if (!reply && (cv->flags & (how >> NF_CTL_SET_SHIFT)) != (__u8)(how >> NF_CTL_SET_SHIFT))
			cv->flags |= how >> NF_CTL_SET_SHIFT;
		if (p->proto == IPPROTO_TCP)
			nf_ct_tcp_close(cv, p->tcp_flags, reply, now);
	}
	nf_ct_touch(cv, now);
	if (reply && reply_flags)
		*reply_flags = cv->flags;
	return NF_CT_HIT;
}

static __always_inline int nf_has_tables(const struct nf_endpoint *ep)
{
	return ep->table[0] != NF_TABLE_NONE || ep->table[1] != NF_TABLE_NONE;
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
	return nf_ct_lookup(ep, rel, (dir & 1) | NF_CTL_RELATED, &k, src_hi, d, NULL, NULL);
}

/* nf_enforce options */
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
			nf_ct_lookup(ep, p, dir, &s->k, src_hi, d, NULL, &s->reply_ct_flags);
		}
		return 1;
	}

	/* one key for the lookup and the entry a miss creates */
	if (p->ct & (NF_PKT_CT_LOOKUP | NF_PKT_CT_CREATE))
		src_hi = nf_ct_key_pkt(&s->k, ep->id, p);
	if (p->ct & NF_PKT_CT_LOOKUP) {
		rc = nf_ct_lookup(ep, p, dir | (__u32)ct_flags << NF_CTL_SET_SHIFT, &s->k, src_hi, d,
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

/* The L4 header of a TCP / UDP packet at l4 (linear data up to `end` = the end of the
 * IP payload, checked by the caller) into *p as nf_parse_l4 reads it; 0 if done,
 * -1 to leave the packet to nf_parse. */
static __always_inline int nf_parse_direct_l4(__u8 *l4, void *data_end, __u8 *end, struct nf_pkt *p)
{
	if (p->proto == IPPROTO_TCP) {
		struct tcphdr *th = (void *)l4;

		if ((void *)(th + 1) > data_end || (__u8 *)(th + 1) > end || th->doff < 5 ||
		    l4 + th->doff * 4 > end)
			return -1;
		p->tcp_flags = l4[13];
	} else if (p->proto == IPPROTO_UDP) {
		if ((void *)(l4 + sizeof(struct udphdr)) > data_end || l4 + sizeof(struct udphdr) > end)
			return -1;
	} else {
		return -1;
	}
	__builtin_memcpy(&p->sport, l4, 2);
	__builtin_memcpy(&p->dport, l4 + 2, 2);
	p->policy_port = p->dport;
	p->has_ports = 1;
	p->ct = NF_PKT_CT_LOOKUP | NF_PKT_CT_CREATE;
	return 0;
}

/*
 * The common case read straight from the skb's linear data: untagged Ethernet,
 * IPv4 without options and not a non-first fragment or IPv6 without extension
 * headers, carrying TCP or UDP with a consistent length. Anything else (and every
 * inconsistency, so drops keep their reasons) returns -1 for nf_parse, which fills
 * *p the same way. Saves the load-bytes helper calls on almost every packet.
 */
static __always_inline int nf_parse_direct(struct __sk_buff *skb, struct nf_pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u32 len = skb->len;

	if ((void *)(eth + 1) > data_end)
		return -1;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		__u32 tot;

		if ((void *)(ip + 1) > data_end || ip->version != 4 || ip->ihl != 5 ||
		    (ip->frag_off & bpf_htons(0x1fff)))
			return -1;
		tot = bpf_ntohs(ip->tot_len);
		if (tot < sizeof(*ip) || sizeof(*eth) + tot > len)
			return -1;
		p->proto = ip->protocol;
		if (nf_parse_direct_l4((void *)(ip + 1), data_end, (__u8 *)ip + tot, p))
			return -1;
		p->family = 4;
		nf_addr_v4mapped(p->saddr, ip->saddr);
		nf_addr_v4mapped(p->daddr, ip->daddr);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		__u32 plen;

		if ((void *)(ip6 + 1) > data_end || ip6->version != 6)
			return -1;
		plen = bpf_ntohs(ip6->payload_len);
		if (!plen || sizeof(*eth) + sizeof(*ip6) + plen > len)
			return -1;
		p->proto = ip6->nexthdr;
		if (nf_parse_direct_l4((void *)(ip6 + 1), data_end, (__u8 *)(ip6 + 1) + plen, p))
			return -1;
		p->family = 6;
		__builtin_memcpy(p->saddr, &ip6->saddr, 16);
		__builtin_memcpy(p->daddr, &ip6->daddr, 16);
	} else {
		return -1;
	}
	p->has_addrs = 1;
	p->len = len;
	return 0;
}

/* The rest of the packets (global: verified apart from the caller, once). */
__noinline int nf_parse_skb(struct __sk_buff *skb, struct nf_pkt *p)
{
	if (!p)
		return NF_PARSE_MALFORMED;
	/* a failed nf_parse_direct may have left fields behind */
	__builtin_memset(p, 0, sizeof(*p));
	return nf_parse(skb, skb->len, p);
}

/* The embedded flow of ICMP error p into *rel (nf_parse_embedded); 0 if readable.
 * Global and apart from nf_parse_skb: the verifier walks the two parsers separately. */
__noinline int nf_parse_related(struct __sk_buff *skb, const struct nf_pkt *p, struct nf_pkt *rel)
{
	if (!p || !rel)
		return -1;
	__builtin_memset(rel, 0, sizeof(*rel));
	rel->len = p->len;
	return nf_parse_embedded(skb, p->inner_off, p->inner_end, p->family, rel);
}

static __always_inline int nf_do_drop(const struct nf_drop *d, const struct nf_pkt *p, __u32 ifindex)
{
	const struct nf_config *cfg = nf_get_config();

	nf_count_ep(d->ep_id, d->dir, NF_EP_DENIED, p->len);
	nf_emit_drop(d, p, ifindex, cfg ? cfg->events_per_sec : 0);
	return TC_ACT_SHOT;
}

/* Deferred egress check of the packet's source `src` = nf_local(saddr), when a
 * local pod (see the top of this file); `rel` as for nf_decide. */
static __always_inline int nf_check_source_pod(const struct nf_local *src, const struct nf_pkt *p,
					       const struct nf_pkt *rel, struct nf_drop *d)
{
	const struct nf_endpoint *sep;
	__u32 sif;

	if (!src || src->kind != NF_LOCAL_POD)
		return 1;
	sif = src->ifindex;
	sep = bpf_map_lookup_elem(&nf_endpoints, &sif);
	if (!sep || !(sep->flags & NF_EP_F_POD))
		return 1;
	return nf_decide(sep, p, rel, NF_DIR_EGRESS, 0, d);
}

/* The tunnel is on for this family: a mode is set and the family's gateway is
 * not silent (NF_CFG_F_TUNNEL_OFF4/6: that family alone flows directly). */
static __always_inline int nf_tunnel_on(const struct nf_config *cfg, __u8 family)
{
	__u32 off = family == 4 ? NF_CFG_F_TUNNEL_OFF4 : NF_CFG_F_TUNNEL_OFF6;

	return cfg && (cfg->flags & (NF_CFG_F_TUNNEL_FWMARK | NF_CFG_F_TUNNEL_DIRECT)) && !(cfg->flags & off);
}

/*
 * Replies of untunnelled flows. A flow that reached a pod straight through the
 * node's stack (above all a ClusterIP request DNATed to a same-node backend:
 * never tunnelled, its destination was a service address) must get its replies
 * back the same way. Tunnelled, a reply (src = the backend, not yet de-DNATed)
 * would skip the node's netfilter in direct mode (the external firewall sees
 * half a flow) and meet it twice in fwmark mode (conntrack collides, the reply
 * is lost). Such a request reaches the backend's tc egress with
 * skb->ingress_ifindex = the client pod's own interface, while a tunnelled one
 * comes back in through the uplink: the backend's conntrack entry for it gets
 * NF_CT_F_NO_TUNNEL and its tc ingress does not tunnel replies hitting it.
 *
 * Chosen over the kernel's conntrack kfuncs (bpf_skb_ct_lookup + IPS_DST_NAT):
 * those see DNAT only (not other untunnelled flows, e.g. a flow started before
 * the tunnel was switched on), need nf_conntrack and kfunc BTF at load time (a
 * weak extern and a second code path where missing) and cannot be driven by
 * BPF_PROG_TEST_RUN without real conntrack state. The own-map flag loads on
 * every kernel the classifier does and costs one lookup per tunnelled packet.
 */
static __always_inline int nf_arrived_untunnelled(const struct __sk_buff *skb,
						  const struct nf_pkt *p,
						  const struct nf_endpoint *ep,
						  const struct nf_local *src)
{
	if (!src || src->kind != NF_LOCAL_POD || src->ifindex != skb->ingress_ifindex)
		return 0;
	/* local delivery: whatever reaches the pod through the stack came that way;
	 * a family whose tunnel is off flags nothing (tunnelled both ways once on) */
	return (ep->flags & NF_EP_F_LOCAL_DELIVERY) ||
	       ((ep->flags & NF_EP_F_TUNNEL) && nf_tunnel_on(nf_get_config(), p->family));
}

/* Transparent tunnel (DESIGN.md 3.8): an allowed packet from a tunnel-mode pod
 * to another local tunnel-mode pod leaves through the uplink instead of the local
 * route, unless it replies to a flow that came untunnelled (above). Both ends in
 * tunnel mode, so a flow's replies take the way it came (a bridge port is never
 * in tunnel mode: its pod's replies are not routed through the uplink). */
static __always_inline int nf_tunnel(struct __sk_buff *skb, const struct nf_pkt *p, __u32 ifindex,
				     const struct nf_scratch *s)
{
	const struct nf_local *to = nf_other_local_pod(p, ifindex);
	const struct nf_endpoint *dep;
	const struct nf_config *cfg;
	__u32 dif;

	if (!to)
		return TC_ACT_OK;
	dif = to->ifindex;
	dep = bpf_map_lookup_elem(&nf_endpoints, &dif);
	if (!dep || !(dep->flags & NF_EP_F_TUNNEL))
		return TC_ACT_OK;
	cfg = nf_get_config();
	if (!nf_tunnel_on(cfg, p->family) || (s->reply_ct_flags & NF_CT_F_NO_TUNNEL))
		return TC_ACT_OK;
	if (cfg->flags & NF_CFG_F_TUNNEL_FWMARK)
		skb->mark = (skb->mark & ~cfg->tunnel_mark_mask) | cfg->tunnel_mark;
	if ((cfg->flags & NF_CFG_F_TUNNEL_DIRECT) && cfg->uplink_ifindex) {
		struct bpf_redir_neigh nh = {};
		int has_gw = 0;

		if (p->family == 4) {
			__builtin_memcpy(&nh.ipv4_nh, cfg->gateway4, 4);
			nh.nh_family = NF_AF_INET;
			has_gw = nh.ipv4_nh != 0;
		} else {
			__builtin_memcpy(nh.ipv6_nh, cfg->gateway6, 16);
			nh.nh_family = NF_AF_INET6;
			has_gw = (nh.ipv6_nh[0] | nh.ipv6_nh[1] | nh.ipv6_nh[2] | nh.ipv6_nh[3]) != 0;
		}
		/* no gateway configured: the kernel's FIB picks the next hop */
		if (has_gw)
			return bpf_redirect_neigh(cfg->uplink_ifindex, &nh, sizeof(nh), 0);
		return bpf_redirect_neigh(cfg->uplink_ifindex, NULL, 0, 0);
	}
	return TC_ACT_OK;
}

/* What routing the packet (TTL / hop limit `ttl` > 1) to local pod `to` does to it:
 * the Ethernet addresses of a frame from the pod's host veth, TTL - 1. 0 if done. */
static __always_inline int nf_forward_rewrite(struct __sk_buff *skb, int family, __u8 ttl, const struct nf_local *to)
{
	if (bpf_skb_store_bytes(skb, 0, to->pod_mac, 2 * ETH_ALEN, 0))
		return -1;
	if (family == 6) {
		ttl--;
		return bpf_skb_store_bytes(skb, ETH_HLEN + offsetof(struct ipv6hdr, hop_limit), &ttl, 1, 0);
	}
	/* the TTL is the high byte of its 16-bit checksum word */
	if (bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), bpf_htons(ttl << 8),
				bpf_htons((__u8)(ttl - 1) << 8), 2))
		return -1;
	ttl--;
	return bpf_skb_store_bytes(skb, ETH_HLEN + offsetof(struct iphdr, ttl), &ttl, 1, 0);
}

/* The TTL / hop limit of an untagged IP packet p, 0 if it is not one. */
static __always_inline __u8 nf_ttl(const struct __sk_buff *skb, const struct nf_pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return 0;
	if (p->family == 4 && eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		return (void *)(ip + 1) > data_end ? 0 : ip->ttl;
	}
	if (p->family == 6 && eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		return (void *)(ip6 + 1) > data_end ? 0 : ip6->hop_limit;
	}
	return 0;
}

/*
 * Local delivery (NF_EP_F_LOCAL_DELIVERY): an allowed packet from a pod to another
 * local pod whose host veth carries the flag is checked against that pod's INGRESS
 * policy here, routed (the pod's MACs from nf_local, TTL - 1) and put straight into
 * the pod's namespace with bpf_redirect_peer, skipping the node's stack and the
 * veth's tc egress. The stack keeps the rest: ICMP errors and protocols without
 * conntrack (their NAT state is the stack's), replies of flows that came through
 * the stack, frames not addressed to the node, expiring TTLs. TC_ACT_OK leaves the
 * packet to the stack.
 */
static __always_inline int nf_deliver_local(struct __sk_buff *skb, const struct nf_pkt *p,
					    struct nf_scratch *s)
{
	const struct nf_endpoint *dep;
	const struct nf_local *l;
	__u8 ttl;
	__u32 dif;

	if (!(p->ct & NF_PKT_CT_LOOKUP) || skb->pkt_type != PACKET_HOST || (s->reply_ct_flags & NF_CT_F_NO_TUNNEL))
		return TC_ACT_OK;
	l = nf_other_local_pod(p, skb->ifindex);
	if (!l)
		return TC_ACT_OK;
	dif = l->ifindex;
	dep = bpf_map_lookup_elem(&nf_endpoints, &dif);
	if (!dep || !(dep->flags & NF_EP_F_LOCAL_DELIVERY))
		return TC_ACT_OK;
	ttl = nf_ttl(skb, p);
	if (ttl <= 1)
		return TC_ACT_OK;
	if (!nf_enforce(dep, p, NF_DIR_INGRESS, 0, &s->d))
		return nf_do_drop(&s->d, p, dif);
	nf_count_ep(dep->id, NF_DIR_INGRESS, NF_EP_ALLOWED, p->len);
	if (nf_forward_rewrite(skb, p->family, ttl, l))
		return TC_ACT_SHOT; /* a half-rewritten packet must not go anywhere */
	return bpf_redirect_peer(dif, 0);
}

/* A pod endpoint whose packets nothing here can drop or redirect: no table in
 * either direction (conntrack keeps no entries for it: see nf_enforce), no tunnel,
 * and at tc egress no deferred check of a source pod that may be due. */
static __always_inline int nf_pod_passes_unparsed(const struct nf_endpoint *ep, int tc_egress)
{
	__u32 busy = NF_EP_F_TUNNEL | NF_EP_F_LOCAL_DELIVERY | (tc_egress ? NF_EP_F_SRC_CHECK : 0);

	return !nf_has_tables(ep) && !(ep->flags & busy);
}

static __always_inline int nf_handle(struct __sk_buff *skb, int tc_egress)
{
	__u32 ifindex = skb->ifindex;
	const struct nf_pkt *relp = NULL;
	const struct nf_endpoint *ep;
	struct nf_scratch *s;
	struct nf_drop *d;
	struct nf_pkt *p;
	int is_pod, to_svc = 0;
	__u32 opts = 0;
	__u8 dir;
	int rc;

	ep = bpf_map_lookup_elem(&nf_endpoints, &ifindex);
	if (!ep)
		return TC_ACT_OK;
	is_pod = (ep->flags & NF_EP_F_POD) != 0;
	if (!is_pod && !(ep->flags & NF_EP_F_HOST))
		return TC_ACT_OK;
	if (is_pod)
		dir = tc_egress ? NF_DIR_INGRESS : NF_DIR_EGRESS;
	else
		dir = tc_egress ? NF_DIR_EGRESS : NF_DIR_INGRESS;
	if (is_pod && nf_pod_passes_unparsed(ep, tc_egress)) {
		/* what the full path would count: IP frames (ND and malformed ones
		 * included: without tables they pass as well) */
		if (skb->protocol == bpf_htons(ETH_P_IP) || skb->protocol == bpf_htons(ETH_P_IPV6))
			nf_count_ep(ep->id, dir, NF_EP_ALLOWED, skb->len);
		return TC_ACT_OK;
	}

	s = nf_get_scratch();
	if (!s)
		return TC_ACT_OK;
	p = &s->p;
	d = &s->d;
	rc = nf_parse_direct(skb, p) == 0 ? NF_PARSE_OK : nf_parse_skb(skb, p);
	if (rc == NF_PARSE_NOT_IP || rc == NF_PARSE_ND)
		return TC_ACT_OK;
	if ((p->ct & NF_PKT_CT_RELATED) && nf_parse_related(skb, p, &s->rel) == 0)
		relp = &s->rel;

	if (!is_pod && p->has_addrs) {
		/* host endpoint: only traffic to / from the node itself is its business;
		 * leaving packets still get the deferred check of a local source pod */
		int mine = dir == NF_DIR_INGRESS ? nf_is_local_kind(p->daddr, NF_LOCAL_NODE)
						 : nf_is_local_kind(p->saddr, NF_LOCAL_NODE);

		if (rc == NF_PARSE_OK && tc_egress && (ep->flags & NF_EP_F_SRC_CHECK) &&
		    !nf_check_source_pod(nf_local(p->saddr), p, relp, d))
			return nf_do_drop(d, p, ifindex);
		if (!mine)
			return TC_ACT_OK;
	}

	if (rc == NF_PARSE_MALFORMED) {
		/* host endpoints without addresses: not provably ours, the stack drops it */
		if (ep->table[dir & 1] == NF_TABLE_NONE || (!is_pod && !p->has_addrs))
			return TC_ACT_OK;
		d->ep_id = ep->id;
		d->dir = dir;
		d->table = ep->table[dir & 1];
		d->rule_index = NF_RULE_DEFAULT;
		d->reason = NF_REASON_MALFORMED;
		return nf_do_drop(d, p, ifindex);
	}

	if (is_pod && tc_egress) {
		/* the source pod is looked up only when a check or the tunnel needs it */
		const struct nf_local *src =
			ep->flags & (NF_EP_F_SRC_CHECK | NF_EP_F_TUNNEL | NF_EP_F_LOCAL_DELIVERY) ? nf_local(p->saddr) : NULL;

		if ((ep->flags & NF_EP_F_SRC_CHECK) && !nf_check_source_pod(src, p, relp, d))
			return nf_do_drop(d, p, ifindex);
		if (nf_arrived_untunnelled(skb, p, ep, src)) {
			__u8 *arrived = nf_stack_arrival(ep);

			opts |= NF_ENF_NO_TUNNEL;
			if (arrived && !*arrived)
				*arrived = 1;
		}
	} else if (is_pod) {
		to_svc = (ep->flags & NF_EP_F_SVC_CIDRS) && nf_in_svc_cidr(p->daddr);
		if (to_svc)
			opts |= NF_ENF_SVC;
		else if ((ep->flags & (NF_EP_F_TUNNEL | NF_EP_F_LOCAL_DELIVERY)) && !nf_has_tables(ep)) {
			/* with tables the flow's lookup is there anyway */
			__u8 *arrived = nf_stack_arrival(ep);

			if (arrived && *arrived)
				opts |= NF_ENF_REPLY_FLAGS;
		}
	}

	if (!nf_decide(ep, p, relp, dir, opts, d))
		return nf_do_drop(d, p, ifindex);
	nf_count_ep(ep->id, dir, NF_EP_ALLOWED, p->len);

	if (!is_pod || dir != NF_DIR_EGRESS || to_svc)
		return TC_ACT_OK;
	if (ep->flags & NF_EP_F_TUNNEL)
		return nf_tunnel(skb, p, ifindex, s);
	if ((ep->flags & NF_EP_F_LOCAL_DELIVERY) && !relp)
		return nf_deliver_local(skb, p, s);
	return TC_ACT_OK;
}

SEC("tc")
int nf_tc_ingress(struct __sk_buff *skb)
{
	return nf_handle(skb, 0);
}

SEC("tc")
int nf_tc_egress(struct __sk_buff *skb)
{
	return nf_handle(skb, 1);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
