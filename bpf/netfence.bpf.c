// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * netfence tc classifier: one object serves every interface; per-endpoint
 * state lives in maps keyed by ifindex (bpf/include/netfence.h).
 *
 * Hook -> role -> policy direction (one function per role below, after nf_hook's
 * endpoint lookup and parse):
 *   pod endpoint:  tc ingress = nf_from_pod: traffic FROM the pod -> its EGRESS table,
 *                               peer = destination; then forwarding (forward.h)
 *                  tc egress  = nf_to_pod: traffic TO the pod -> its INGRESS table,
 *                               peer = source
 *   host endpoint: nf_host: tc ingress = traffic TO a node address   -> INGRESS table
 *                           tc egress  = traffic FROM a node address -> EGRESS table
 *                           (anything else is forwarded traffic and passes)
 *
 * Headers: maps.h (every map), parse.h / parse_skb.h (parsing), node.h (endpoint
 * and address lookups), policy.h + conntrack.h + enforce.h (enforcement), events.h
 * (drop counters and events), forward.h (tunnel, local delivery).
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
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "netfence.h"
#include "maps.h"
#include "parse_skb.h"
#include "node.h"
#include "enforce.h"
#include "forward.h"
#include "btf_pins.h"

/* A pod endpoint whose packets nothing here can drop or redirect: no table in
 * either direction (conntrack keeps no entries for it: see nf_enforce), no tunnel,
 * and at tc egress no deferred check of a source pod that may be due. */
static __always_inline int nf_pod_passes_unparsed(const struct nf_endpoint *ep, int tc_egress)
{
	__u32 busy = NF_EP_F_TUNNEL | NF_EP_F_LOCAL_DELIVERY | (tc_egress ? NF_EP_F_SRC_CHECK : 0);

	return !nf_has_tables(ep) && !(ep->flags & busy);
}

/* Such a pod's packet passes; counted as the full path would count it: IP frames
 * (ND and malformed ones included: without tables they pass as well). */
static __always_inline int nf_pass_unparsed(const struct __sk_buff *skb, const struct nf_endpoint *ep, __u8 dir)
{
	if (skb->protocol == bpf_htons(ETH_P_IP) || skb->protocol == bpf_htons(ETH_P_IPV6))
		nf_count_ep(ep->stats_slot, dir, NF_EP_ALLOWED, skb->len);
	return TC_ACT_OK;
}

/* tc ingress of a pod endpoint: what the pod sends, under its EGRESS table. A
 * destination in a service CIDR is deferred to the hooks after DNAT; an allowed
 * packet to another local pod may be tunnelled or delivered locally. */
static __always_inline int nf_from_pod(struct __sk_buff *skb, const struct nf_endpoint *ep,
				       struct nf_scratch *s, int rc, const struct nf_pkt *rel)
{
	const __u8 dir = NF_DIR_EGRESS;
	__u32 opts = 0;
	int to_svc;

	if (rc == NF_PARSE_MALFORMED)
		return nf_drop_malformed(ep, dir, s, skb->ifindex);
	to_svc = (ep->flags & NF_EP_F_SVC_CIDRS) && nf_in_svc_cidr(s->p.daddr);
	if (to_svc) {
		opts |= NF_ENF_SVC;
	} else if ((ep->flags & (NF_EP_F_TUNNEL | NF_EP_F_LOCAL_DELIVERY)) && !nf_has_tables(ep)) {
		/* with tables the flow's lookup is there anyway */
		__u8 *arrived = nf_stack_arrival(ep);

		if (arrived && *arrived)
			opts |= NF_ENF_REPLY_FLAGS;
	}
	if (!nf_allow(ep, s, rel, dir, opts, skb->ifindex))
		return TC_ACT_SHOT;
	if (to_svc)
		return TC_ACT_OK;
	if (ep->flags & NF_EP_F_TUNNEL)
		return nf_tunnel(skb, &s->p, skb->ifindex, s);
	if ((ep->flags & NF_EP_F_LOCAL_DELIVERY) && !rel)
		return nf_deliver_local(skb, &s->p, s);
	return TC_ACT_OK;
}

/* tc egress of a pod endpoint: what reaches the pod, under its INGRESS table,
 * after the deferred egress check of a local source pod. A flow that came through
 * the node's stack is flagged so its replies go back that way. */
static __always_inline int nf_to_pod(struct __sk_buff *skb, const struct nf_endpoint *ep,
				     struct nf_scratch *s, int rc, const struct nf_pkt *rel)
{
	const __u8 dir = NF_DIR_INGRESS;
	const struct nf_local *src;
	__u32 opts = 0;

	if (rc == NF_PARSE_MALFORMED)
		return nf_drop_malformed(ep, dir, s, skb->ifindex);
	/* the source pod is looked up only when a check or the tunnel needs it */
	src = ep->flags & (NF_EP_F_SRC_CHECK | NF_EP_F_TUNNEL | NF_EP_F_LOCAL_DELIVERY) ? nf_local(s->p.saddr) : NULL;
	if ((ep->flags & NF_EP_F_SRC_CHECK) && !nf_check_source_pod(src, &s->p, rel, &s->d))
		return nf_do_drop(&s->d, &s->p, skb->ifindex);
	if (nf_arrived_untunnelled(skb, &s->p, ep, src)) {
		__u8 *arrived = nf_stack_arrival(ep);

		opts |= NF_ENF_NO_TUNNEL;
		if (arrived && !*arrived)
			*arrived = 1;
	}
	if (!nf_allow(ep, s, rel, dir, opts, skb->ifindex))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

/* Either hook of a host endpoint: only traffic to (tc ingress, INGRESS table) or
 * from (tc egress, EGRESS table) a node address is its business; a leaving packet
 * still gets the deferred egress check of a local source pod. */
static __always_inline int nf_host(struct __sk_buff *skb, const struct nf_endpoint *ep, const __u8 dir,
				   struct nf_scratch *s, int rc, const struct nf_pkt *rel)
{
	int mine;

	/* no addresses (a truncated IP header): not provably ours, the stack drops it */
	if (!s->p.has_addrs)
		return TC_ACT_OK;
	mine = nf_is_local_kind(dir == NF_DIR_INGRESS ? s->p.daddr : s->p.saddr, NF_LOCAL_NODE);
	if (rc == NF_PARSE_OK && dir == NF_DIR_EGRESS && (ep->flags & NF_EP_F_SRC_CHECK) &&
	    !nf_check_source_pod(nf_local(s->p.saddr), &s->p, rel, &s->d))
		return nf_do_drop(&s->d, &s->p, skb->ifindex);
	if (!mine)
		return TC_ACT_OK;
	if (rc == NF_PARSE_MALFORMED)
		return nf_drop_malformed(ep, dir, s, skb->ifindex);
	if (!nf_allow(ep, s, rel, dir, 0, skb->ifindex))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

/* What both hooks do before the role: the endpoint of the interface, the pod
 * fast path, the parse (one copy per program), then the endpoint's role. */
static __always_inline int nf_hook(struct __sk_buff *skb, const int tc_egress)
{
	const struct nf_endpoint *ep = nf_endpoint_of(skb->ifindex);
	const struct nf_pkt *rel;
	struct nf_scratch *s;
	int is_pod, rc;

	if (!ep)
		return TC_ACT_OK;
	is_pod = (ep->flags & NF_EP_F_POD) != 0;
	if (!is_pod && !(ep->flags & NF_EP_F_HOST))
		return TC_ACT_OK;
	if (is_pod && nf_pod_passes_unparsed(ep, tc_egress))
		return nf_pass_unparsed(skb, ep, tc_egress ? NF_DIR_INGRESS : NF_DIR_EGRESS);
	s = nf_get_scratch();
	if (!s)
		return TC_ACT_OK;
	rc = nf_parse_packet(skb, s, &rel);
	if (rc == NF_PARSE_NOT_IP || rc == NF_PARSE_ND)
		return TC_ACT_OK;
	if (!is_pod)
		return nf_host(skb, ep, tc_egress ? NF_DIR_EGRESS : NF_DIR_INGRESS, s, rc, rel);
	return tc_egress ? nf_to_pod(skb, ep, s, rc, rel) : nf_from_pod(skb, ep, s, rc, rel);
}

SEC("tc")
int nf_tc_ingress(struct __sk_buff *skb)
{
	return nf_hook(skb, 0);
}

SEC("tc")
int nf_tc_egress(struct __sk_buff *skb)
{
	return nf_hook(skb, 1);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
