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
 *
 * ICMP errors (destination unreachable incl. fragmentation needed, packet too
 * big, time exceeded, parameter problem) carry the header of the packet they are
 * about: nf_parse marks them NF_PKT_CT_RELATED and nf_parse_embedded reads that
 * header into the tuple conntrack knows the flow by.
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
#define NF_ICMP_DEST_UNREACH 3
#define NF_ICMP_TIME_EXCEEDED 11
#define NF_ICMP_PARAMETERPROB 12
#define NF_ICMPV6_DEST_UNREACH 1
#define NF_ICMPV6_PARAMPROB 4  /* 1..4: unreachable, packet too big, time exceeded, parameter */

#define NF_TCP_FIN 0x01
#define NF_TCP_SYN 0x02
#define NF_TCP_RST 0x04
#define NF_TCP_ACK 0x10

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
	__u8 tcp_flags;  /* NF_TCP_* (0 for other protocols) */
	__u32 len;       /* frame length (counters) */
	/* NF_PKT_CT_RELATED: the embedded header spans [inner_off, inner_end)
	 * (an ICMP error is never a GSO packet: 16 bits suffice) */
	__u16 inner_off;
	__u16 inner_end;
};

/* Conntrack use of a packet: ported protocols and ICMP echo requests start
 * flows; echo replies only find them; ICMP errors are related to the flow of
 * their embedded header; everything else is evaluated alone. */
#define NF_PKT_CT_LOOKUP (1u << 0)
#define NF_PKT_CT_CREATE (1u << 1)
#define NF_PKT_CT_RELATED (1u << 2)

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

static __always_inline int nf_is_icmp_error(__u8 proto, __u8 type)
{
	if (proto == IPPROTO_ICMP)
		return type == NF_ICMP_DEST_UNREACH || type == NF_ICMP_TIME_EXCEEDED ||
		       type == NF_ICMP_PARAMETERPROB;
	return type >= NF_ICMPV6_DEST_UNREACH && type <= NF_ICMPV6_PARAMPROB;
}

enum nf_ext_rc {
	NF_EXT_OK = 0,
	NF_EXT_FRAGMENT = 1, /* a non-first fragment: no L4 header follows */
	NF_EXT_MALFORMED = 2,
};

/* Walk IPv6 extension headers from *off (next header *nh) up to the L4 header. */
static __always_inline int nf_ipv6_skip_ext(void *ctx, __u32 *off, __u32 end, __u8 *nh)
{
	int i;

	for (i = 0; i < NF_IPV6_EXT_MAX; i++) {
		__u8 eh[2];

		if (!nf_is_ext_hdr(*nh))
			break;
		if (*off + 8 > end || NF_LOAD_BYTES(ctx, *off, eh, sizeof(eh)) < 0)
			return NF_EXT_MALFORMED;
		if (*nh == IPPROTO_FRAGMENT) {
			__be16 fo;

			if (NF_LOAD_BYTES(ctx, *off + 2, &fo, sizeof(fo)) < 0)
				return NF_EXT_MALFORMED;
			*nh = eh[0];
			if (bpf_ntohs(fo) & 0xfff8)
				return NF_EXT_FRAGMENT;
			*off += 8;
			continue;
		}
		if (*nh == IPPROTO_AH)
			*off += (eh[1] + 2) * 4;
		else
			*off += (eh[1] + 1) * 8;
		*nh = eh[0];
	}
	if (nf_is_ext_hdr(*nh))
		return NF_EXT_MALFORMED; /* more extension headers than we walk */
	return NF_EXT_OK;
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
		__u8 hdr[2] = {}; /* data offset, flags */
		__u32 doff;

		if (NF_LOAD_BYTES(ctx, off + 12, hdr, sizeof(hdr)) < 0)
			return NF_PARSE_MALFORMED;
		doff = hdr[0] >> 4;
		if (doff < 5 || off + doff * 4 > end)
			return NF_PARSE_MALFORMED;
		p->tcp_flags = hdr[1];
	}
	if (p->proto == IPPROTO_ICMP || p->proto == IPPROTO_ICMPV6) {
		__u8 type = buf[0];
		__u16 id;

		if (p->proto == IPPROTO_ICMPV6 && type >= NF_ICMPV6_ND_FIRST && type <= NF_ICMPV6_ND_LAST)
			return NF_PARSE_ND;
		if (nf_is_icmp_error(p->proto, type)) {
			p->ct = NF_PKT_CT_RELATED;
			p->inner_off = off + 8;
			p->inner_end = end > 0xffff ? 0xffff : end;
			return NF_PARSE_OK;
		}
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
	int rc;

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

	rc = nf_ipv6_skip_ext(ctx, &off, end, &nh);
	if (rc == NF_EXT_MALFORMED)
		return NF_PARSE_MALFORMED;
	p->proto = nh;
	if (rc == NF_EXT_FRAGMENT)
		return NF_PARSE_OK; /* non-first fragment: no L4 header */
	if (off > end)
		return NF_PARSE_MALFORMED;
	return nf_parse_l4(ctx, off, end, p);
}

/*
 * The header embedded in an ICMP error of family `family` ([off, end) of the
 * frame: an IP header and at least 8 bytes of its L4 header) as the tuple of a
 * packet going the other way: the error travels back along the flow the embedded
 * packet belongs to, so conntrack finds that flow with the usual two lookups.
 * Returns 0, or -1 when no tuple can be read (truncated, a non-first fragment,
 * a protocol without ports, ICMP other than echo).
 */
static __always_inline int nf_parse_embedded(void *ctx, __u32 off, __u32 end, __u8 family,
					     struct nf_pkt *r)
{
	__u16 sport = 0, dport = 0;
	__u8 buf[8];
	__u8 proto;

	if (family == 4) {
		struct iphdr ip;
		__u32 hlen;

		if (off + sizeof(ip) > end || NF_LOAD_BYTES(ctx, off, &ip, sizeof(ip)) < 0)
			return -1;
		hlen = ip.ihl * 4;
		if (ip.version != 4 || hlen < sizeof(ip) || (bpf_ntohs(ip.frag_off) & 0x1fff))
			return -1;
		proto = ip.protocol;
		nf_addr_v4mapped(r->saddr, ip.daddr);
		nf_addr_v4mapped(r->daddr, ip.saddr);
		off += hlen;
	} else {
		struct ipv6hdr ip6;

		if (off + sizeof(ip6) > end || NF_LOAD_BYTES(ctx, off, &ip6, sizeof(ip6)) < 0)
			return -1;
		if (ip6.version != 6)
			return -1;
		proto = ip6.nexthdr;
		off += sizeof(ip6);
		if (nf_ipv6_skip_ext(ctx, &off, end, &proto) != NF_EXT_OK)
			return -1;
		__builtin_memcpy(r->saddr, &ip6.daddr, 16);
		__builtin_memcpy(r->daddr, &ip6.saddr, 16);
	}
	if (off + sizeof(buf) > end || NF_LOAD_BYTES(ctx, off, buf, sizeof(buf)) < 0)
		return -1;

	switch (proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
		__builtin_memcpy(&sport, buf, 2);
		__builtin_memcpy(&dport, buf + 2, 2);
		r->has_ports = 1;
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		/* an echo's tuple (parse_l4): request id / 0, reply 0 / id */
		if ((proto == IPPROTO_ICMP) != (family == 4))
			return -1;
		if (buf[0] == (family == 4 ? NF_ICMP_ECHO : NF_ICMPV6_ECHO_REQUEST))
			__builtin_memcpy(&sport, buf + 4, 2);
		else if (buf[0] == (family == 4 ? NF_ICMP_ECHOREPLY : NF_ICMPV6_ECHO_REPLY))
			__builtin_memcpy(&dport, buf + 4, 2);
		else
			return -1;
		break;
	default:
		return -1;
	}
	r->proto = proto;
	r->family = family;
	r->has_addrs = 1;
	r->sport = dport;
	r->dport = sport;
	r->policy_port = r->has_ports ? r->dport : 0;
	r->ct = NF_PKT_CT_LOOKUP;
	return 0;
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
