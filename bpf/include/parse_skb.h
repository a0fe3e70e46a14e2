/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Parsing as the tc classifier does it: the common case straight from the skb's
 * linear data, the rest through parse.h's load-bytes parser, and the embedded
 * flow of an ICMP error. The prefilter (XDP) uses parse.h alone.
 */
#ifndef NF_PARSE_SKB_H
#define NF_PARSE_SKB_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "parse.h"
#include "types.h"

/* A 16-bit length from the header, as a value the verifier knows is below 64 KiB:
 * older verifiers (Debian 12's 6.1) give a byte swap's result no bounds, and refuse
 * the packet pointer it then offsets. The barrier keeps clang from dropping
 * the mask it knows to be redundant. */
static __always_inline __u32 nf_ntohs_bounded(__be16 v)
{
	__u32 h = bpf_ntohs(v);

	barrier_var(h);
	return h & 0xffff;
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
		tot = nf_ntohs_bounded(ip->tot_len);
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
		plen = nf_ntohs_bounded(ip6->payload_len);
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

/* This packet into s->p; *rel = its embedded flow (s->rel) when it is an ICMP
 * error whose embedded header reads, else NULL. Returns enum nf_parse_rc. */
static __always_inline int nf_parse_packet(struct __sk_buff *skb, struct nf_scratch *s,
					   const struct nf_pkt **rel)
{
	int rc = nf_parse_direct(skb, &s->p) == 0 ? NF_PARSE_OK : nf_parse_skb(skb, &s->p);

	*rel = NULL;
	if ((s->p.ct & NF_PKT_CT_RELATED) && nf_parse_related(skb, &s->p, &s->rel) == 0)
		*rel = &s->rel;
	return rc;
}

#endif /* NF_PARSE_SKB_H */
