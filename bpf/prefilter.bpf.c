// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * XDP prefilter: stateless deny-CIDR for the whole node. Drops packets whose
 * source address matches nf_prefilter (IPv4 as IPv4-mapped IPv6), counts them
 * per reason, and passes everything else (non-IP and short frames included).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "netfence.h"
#define NF_LOAD_BYTES bpf_xdp_load_bytes
#include "parse.h"
#include "counters.h"

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct nf_addr_lpm_key);
	__type(value, __u8);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nf_prefilter SEC(".maps");

NF_REASON_COUNTERS(nf_prefilter_stats);

/* Source address of an IP frame in 16-byte form; 0 if not IP or too short. */
static __always_inline int nf_source_addr(struct xdp_md *ctx, __u8 *addr)
{
	__u32 off = 0;
	__u16 proto = nf_parse_l2(ctx, &off);
	__be32 v4;

	if (proto == ETH_P_IP) {
		if (bpf_xdp_load_bytes(ctx, off + offsetof(struct iphdr, saddr), &v4, 4) < 0)
			return 0;
		nf_addr_v4mapped(addr, v4);
		return 1;
	}
	if (proto == ETH_P_IPV6)
		return bpf_xdp_load_bytes(ctx, off + offsetof(struct ipv6hdr, saddr), addr, 16) == 0;
	return 0;
}

SEC("xdp")
int nf_xdp_prefilter(struct xdp_md *ctx)
{
	struct nf_addr_lpm_key k = {};

	k.prefixlen = 128; /* set apart: an initializer would land in .rodata */
	if (!nf_source_addr(ctx, k.addr))
		return XDP_PASS;
	if (!bpf_map_lookup_elem(&nf_prefilter, &k))
		return XDP_PASS;
	nf_count_index(&nf_prefilter_stats, NF_REASON_PREFILTER, ctx->data_end - ctx->data);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
