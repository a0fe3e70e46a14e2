/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Forwarding of allowed packets from a pod: the transparent tunnel (fwmark or
 * bpf_redirect_neigh to the uplink) and local delivery (bpf_redirect_peer into
 * another local pod), and which flows' replies stay on the node's stack.
 */
#ifndef NF_FORWARD_H
#define NF_FORWARD_H

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_packet.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "netfence.h"
#include "parse.h"
#include "types.h"
#include "node.h"
#include "enforce.h"

#define NF_AF_INET 2
#define NF_AF_INET6 10

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

	if (!to)
		return TC_ACT_OK;
	dep = nf_endpoint_of(to->ifindex);
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

/* What routing the packet (an untagged IP packet of family `family` whose TTL /
 * hop limit nf_ttl found > 1) to local pod `to` does to it: the Ethernet addresses
 * of a frame from the pod's host veth, TTL - 1. Direct packet writes: one helper
 * call per field cost ~15 % of a run in situ. 0 if done, -1 (nothing written) if
 * the headers are no longer there. */
static __always_inline int nf_forward_rewrite(struct __sk_buff *skb, int family, const struct nf_local *to)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	if (family == 6) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		ip6->hop_limit--;
	} else {
		struct iphdr *ip = (void *)(eth + 1);
		__u32 check;

		if ((void *)(ip + 1) > data_end)
			return -1;
		/* the TTL is the high byte of its 16-bit word: the one's complement sum
		 * grows by 0x0100 (RFC 1624, as the kernel's ip_decrease_ttl) */
		check = ip->check;
		check += bpf_htons(0x0100);
		ip->check = (__u16)(check + (check >= 0xffff));
		ip->ttl--;
	}
	__builtin_memcpy(eth->h_dest, to->pod_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, to->host_mac, ETH_ALEN);
	return 0;
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
	__u32 dif;

	if (!(p->ct & NF_PKT_CT_LOOKUP) || skb->pkt_type != PACKET_HOST || (s->reply_ct_flags & NF_CT_F_NO_TUNNEL))
		return TC_ACT_OK;
	l = nf_other_local_pod(p, skb->ifindex);
	if (!l)
		return TC_ACT_OK;
	dif = l->ifindex;
	dep = nf_endpoint_of(dif);
	if (!dep || !(dep->flags & NF_EP_F_LOCAL_DELIVERY))
		return TC_ACT_OK;
	if (nf_ttl(skb, p) <= 1)
		return TC_ACT_OK;
	if (!nf_allow(dep, s, NULL, NF_DIR_INGRESS, 0, dif))
		return TC_ACT_SHOT;
	if (nf_forward_rewrite(skb, p->family, l))
		return TC_ACT_SHOT; /* its headers went since nf_ttl read them: not routable */
	return bpf_redirect_peer(dif, 0);
}

#endif /* NF_FORWARD_H */
