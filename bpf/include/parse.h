/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Packet parsing for the classifier and the prefilter: Ethernet, 802.1Q/802.1ad
 * tags, IPv4 (options, fragments), IPv6 (extension headers), TCP, UDP, SCTP,
 * ICMP, ICMPv6. Headers are copied with a load-bytes helper (NF_LOAD_BYTES,
 * bpf_skb_load_bytes unless the includer says otherwise), so non-linear skbs
 * parse the same as linear ones and the verifier sees no packet pointers.
 *
 * Fragments: only the first fragment carries the L4 header. Non-first
 * fragments are evaluated with port 0 and no conntrack tuple, so only rules
 * that allow every port of the protocol (or every protocol) match them.
 */
#ifndef NF_PARSE_H
#define NF_PARSE_H

#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef NF_LOAD_BYTES
#define NF_LOAD_BYTES bpf_skb_load_bytes
#endif

#ifndef IPPROTO_SCTP
#define IPPROTO_SCTP 132
#endif

/* ICMP types (linux/icmp.h drags in libc socket headers). */
#define NF_ICMP_ECHOREPLY 0
#define NF_ICMP_ECHO 8
#define NF_ICMPV6_ECHO_REQUEST 128
#define NF_ICMPV6_ECHO_REPLY 129
#define NF_ICMPV6_ND_FIRST 133 /* router solicitation */
#define NF_ICMPV6_ND_LAST 137  /* redirect */

#define NF_VLAN_MAX 3   /* QinQ and one more */
#define NF_IPV6_EXT_MAX 8

enum nf_parse_rc {
	NF_PARSE_OK = 0,
	NF_PARSE_NOT_IP = 1,    /* ARP, LLDP, ...: never policed */
	NF_PARSE_ND = 2,        /* IPv6 neighbour discovery: never dropped */
	NF_PARSE_MALFORMED = 3, /* truncated or inconsistent IP/L4 header */
};

struct nf_pkt {
	__u8 saddr[16];
	__u8 daddr[16];
	/* Conntrack tuple ports, network order (ICMP echo: id / 0). */
	__u16 sport;
	__u16 dport;
	/* Destination port for the policy lookup, network order (0 without ports). */
	__u16 policy_port;
	__u8 proto;
	__u8 family;     /* 4 or 6 */
	__u8 has_addrs;  /* addresses valid (set before L4 parsing) */
	__u8 ct;         /* NF_PKT_CT_* */
	__u8 has_ports;  /* TCP/UDP/SCTP with an L4 header */
	__u8 _pad;
	__u32 len;       /* frame length (counters) */
};

/* Conntrack use of a packet: ported protocols and ICMP echo requests start
 * flows; echo replies only find them; everything else is evaluated alone. */
#define NF_PKT_CT_LOOKUP (1u << 0)
#define NF_PKT_CT_CREATE (1u << 1)

struct nf_vlan_hdr {
	__be16 tci;
	__be16 proto;
};

/* Skip Ethernet and up to NF_VLAN_MAX 802.1Q / 802.1ad tags. Returns the
 * EtherType of the payload and its offset in *off; 0 if the frame is short. */
static __always_inline __u16 nf_parse_l2(void *ctx, __u32 *off)
{
	struct ethhdr eth;
	struct nf_vlan_hdr vh;
	__u16 proto;
	int i;

	if (NF_LOAD_BYTES(ctx, 0, &eth, sizeof(eth)) < 0)
		return 0;
	proto = bpf_ntohs(eth.h_proto);
	*off = sizeof(eth);
#pragma unroll
	for (i = 0; i < NF_VLAN_MAX; i++) {
		if (proto != ETH_P_8021Q && proto != ETH_P_8021AD)
			break;
		if (NF_LOAD_BYTES(ctx, *off, &vh, sizeof(vh)) < 0)
			return 0;
		proto = bpf_ntohs(vh.proto);
		*off += sizeof(vh);
	}
	return proto;
}

static __always_inline void nf_addr_v4mapped(__u8 *dst, __be32 v4)
{
	__builtin_memset(dst, 0, 10);
	dst[10] = 0xff;
	dst[11] = 0xff;
	__builtin_memcpy(dst + 12, &v4, 4);
}

static __always_inline int nf_is_ext_hdr(__u8 nh)
{
	return nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS ||
	       nh == IPPROTO_FRAGMENT || nh == IPPROTO_AH;
}

/* L4: ports (TCP/UDP/SCTP share the port offsets), ICMP echo ids, ND. */
static __always_inline int nf_parse_l4(void *ctx, __u32 off, __u32 end, struct nf_pkt *p)
{
	__u8 buf[8];
	__u32 need;

	switch (p->proto) {
	case IPPROTO_TCP:
		need = sizeof(struct tcphdr);
		break;
	case IPPROTO_UDP:
		need = sizeof(struct udphdr);
		break;
	case IPPROTO_SCTP:
		need = 12; /* common header: ports, verification tag, checksum */
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		need = 8; /* type, code, checksum, id/seq (or unused) */
		break;
	default:
		return NF_PARSE_OK; /* other protocols: matched by protocol only */
	}
	if (off + need > end)
		return NF_PARSE_MALFORMED;
	if (NF_LOAD_BYTES(ctx, off, buf, sizeof(buf)) < 0)
		return NF_PARSE_MALFORMED;

	if (p->proto == IPPROTO_TCP) {
		/* data offset below 5 words or past the IP payload: not a TCP header */
		__u8 doff = 0;

		if (NF_LOAD_BYTES(ctx, off + 12, &doff, 1) < 0)
			return NF_PARSE_MALFORMED;
		doff >>= 4;
		if (doff < 5 || off + doff * 4 > end)
			return NF_PARSE_MALFORMED;
	}
	if (p->proto == IPPROTO_ICMP || p->proto == IPPROTO_ICMPV6) {
		__u8 type = buf[0];
		__u16 id;

		if (p->proto == IPPROTO_ICMPV6 && type >= NF_ICMPV6_ND_FIRST && type <= NF_ICMPV6_ND_LAST)
			return NF_PARSE_ND;
		__builtin_memcpy(&id, buf + 4, 2);
		if ((p->proto == IPPROTO_ICMP && type == NF_ICMP_ECHO) ||
		    (p->proto == IPPROTO_ICMPV6 && type == NF_ICMPV6_ECHO_REQUEST)) {
			p->sport = id;
			p->ct = NF_PKT_CT_LOOKUP | NF_PKT_CT_CREATE;
		} else if ((p->proto == IPPROTO_ICMP && type == NF_ICMP_ECHOREPLY) ||
			   (p->proto == IPPROTO_ICMPV6 && type == NF_ICMPV6_ECHO_REPLY)) {
			/* the reversed tuple of a reply is the request's key */
			p->dport = id;
			p->ct = NF_PKT_CT_LOOKUP;
		}
		return NF_PARSE_OK;
	}
	__builtin_memcpy(&p->sport, buf, 2);
	__builtin_memcpy(&p->dport, buf + 2, 2);
	p->policy_port = p->dport;
	p->has_ports = 1;
	p->ct = NF_PKT_CT_LOOKUP | NF_PKT_CT_CREATE;
	return NF_PARSE_OK;
}

static __always_inline int nf_parse_ipv4(void *ctx, __u32 off, __u32 len, struct nf_pkt *p)
{
	struct iphdr ip;
	__u32 hlen, end, tot;

	if (NF_LOAD_BYTES(ctx, off, &ip, sizeof(ip)) < 0)
		return NF_PARSE_MALFORMED;
	hlen = ip.ihl * 4;
	tot = bpf_ntohs(ip.tot_len);
	if (ip.version != 4 || hlen < sizeof(ip))
		return NF_PARSE_MALFORMED;
	/* addresses first: drops of inconsistent packets still name them */
	p->family = 4;
	p->proto = ip.protocol;
	nf_addr_v4mapped(p->saddr, ip.saddr);
	nf_addr_v4mapped(p->daddr, ip.daddr);
	p->has_addrs = 1;
	/* tot_len 0 is left by large GSO packets: trust the skb length then */
	end = tot ? off + tot : len;
	if (tot && (tot < hlen || end > len))
		return NF_PARSE_MALFORMED;
	if (off + hlen > end)
		return NF_PARSE_MALFORMED;
	if (bpf_ntohs(ip.frag_off) & 0x1fff)
		return NF_PARSE_OK; /* non-first fragment: no L4 header */
	return nf_parse_l4(ctx, off + hlen, end, p);
}

static __always_inline int nf_parse_ipv6(void *ctx, __u32 off, __u32 len, struct nf_pkt *p)
{
	struct ipv6hdr ip6;
	__u32 end, plen;
	__u8 nh;
	int i;

	if (NF_LOAD_BYTES(ctx, off, &ip6, sizeof(ip6)) < 0)
		return NF_PARSE_MALFORMED;
	if (ip6.version != 6)
		return NF_PARSE_MALFORMED;
	p->family = 6;
	__builtin_memcpy(p->saddr, &ip6.saddr, 16);
	__builtin_memcpy(p->daddr, &ip6.daddr, 16);
	p->has_addrs = 1;
	plen = bpf_ntohs(ip6.payload_len);
	/* payload_len 0: jumbogram / BIG TCP, trust the skb length */
	end = plen ? off + sizeof(ip6) + plen : len;
	if (end > len)
		return NF_PARSE_MALFORMED;
	nh = ip6.nexthdr;
	off += sizeof(ip6);

	for (i = 0; i < NF_IPV6_EXT_MAX; i++) {
		__u8 eh[2];

		if (!nf_is_ext_hdr(nh))
			break;
		if (off + 8 > end || NF_LOAD_BYTES(ctx, off, eh, sizeof(eh)) < 0)
			return NF_PARSE_MALFORMED;
		if (nh == IPPROTO_FRAGMENT) {
			__be16 fo;

			if (NF_LOAD_BYTES(ctx, off + 2, &fo, sizeof(fo)) < 0)
				return NF_PARSE_MALFORMED;
			if (bpf_ntohs(fo) & 0xfff8) {
				p->proto = eh[0];
				return NF_PARSE_OK; /* non-first fragment: no L4 header */
			}
			off += 8;
		} else if (nh == IPPROTO_AH) {
			off += (eh[1] + 2) * 4;
		} else {
			off += (eh[1] + 1) * 8;
		}
		nh = eh[0];
	}
	if (nf_is_ext_hdr(nh))
		return NF_PARSE_MALFORMED; /* more extension headers than we walk */
	p->proto = nh;
	if (off > end)
		return NF_PARSE_MALFORMED;
	return nf_parse_l4(ctx, off, end, p);
}

/* Parse a frame of `len` bytes into *p. */
static __always_inline int nf_parse(void *ctx, __u32 len, struct nf_pkt *p)
{
	__u32 off = 0;
	__u16 proto = nf_parse_l2(ctx, &off);

	p->len = len;
	if (proto == ETH_P_IP)
		return nf_parse_ipv4(ctx, off, len, p);
	if (proto == ETH_P_IPV6)
		return nf_parse_ipv6(ctx, off, len, p);
	return NF_PARSE_NOT_IP;
}

#endif /* NF_PARSE_H */
