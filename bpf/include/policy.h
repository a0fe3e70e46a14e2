/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Policy lookup: (table, peer address, protocol, destination port) -> verdict.
 *
 *   identity   = nf_ident_exact[addr] or else nf_ident_lpm[addr] (0 = none)
 *   peer bits  = nf_peer_ident[{table, identity}] | nf_peer_cidr[{table, addr}]
 *   port bits  = nf_ports[{table, proto, port}]   (longest prefix: ranges)
 *   verdict    = first set bit of peer & port; Pass clears the rest of its tier.
 *
 * Every step is a hash lookup or one trie walk, independent of the rule count.
 *
 * Counters (nf_rule_stats, per CPU) count policy evaluations: the first packet
 * of each conntrack flow, every packet without conntrack (non-echo ICMP,
 * non-first fragments, other protocols) and revision re-evaluations. Packets of
 * established flows are not evaluated and not counted. Index NF_RULE_DEFAULT
 * counts evaluations that matched no rule (default allow, or NF_TABLE_DENY's deny).
 */
#ifndef NF_POLICY_H
#define NF_POLICY_H

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "netfence.h"
#include "parse.h"
#include "counters.h"
#include "maps.h"

/* Bounded Pass chain: each Pass jumps past its tier, so a handful suffices. The walk
 * takes one more step per chunk it moves on to. */
#define NF_POLICY_STEPS 8

struct nf_verdict {
	__u32 rule_index; /* global rule index; NF_RULE_DEFAULT when no rule matched */
	__u32 policy_id;
	__u32 rule_id;
	__u8 action;      /* NF_ACT_ALLOW or NF_ACT_DENY */
	__u8 tier;
	__u8 reason;      /* drop reason when action is DENY */
	__u8 _pad;
};

/* Index of the lowest set bit of a non-zero word: popcount of the bits below
 * it (branch-free, so the verifier sees one path). */
static __always_inline __u32 nf_ffs64(__u64 x)
{
	x = (x & -x) - 1;
	x = x - ((x >> 1) & 0x5555555555555555ULL);
	x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
	return (x * 0x0101010101010101ULL) >> 56;
}

/* Bits [0, n) of a word for n in 0..64, branch-free. */
static __always_inline __u64 nf_mask_below(__u32 n)
{
	return ((1ULL << (n & 63)) - 1) | -(__u64)(n >> 6);
}

/* n clamped to [0, 64], branch-free (|n| < 2^62): no paths for the verifier to
 * multiply inside the bpf_loop callback. */
static __always_inline __u32 nf_clamp64(__s64 n)
{
	__s64 neg = n >> 63;

	barrier_var(neg); /* or clang turns the masks back into branches */
	n &= ~neg;        /* max(n, 0) */
	n = 64 - n;
	neg = n >> 63;
	barrier_var(neg);
	n &= ~neg;        /* max(64 - n, 0) */
	return 64 - n;
}

/* Clear bits [from, to) of a chunk's match set; either bound may lie outside the
 * chunk (below 0, past NF_CHUNK_RULES). */
static __always_inline void nf_clear_range(__u64 *m, __s64 from, __s64 to)
{
	int w;

#pragma unroll
	for (w = 0; w < NF_BITMAP_WORDS; w++)
		m[w] &= ~(nf_mask_below(nf_clamp64(to - w * 64)) & ~nf_mask_below(nf_clamp64(from - w * 64)));
}

static __always_inline void nf_count_rule(__u32 table, __u32 index, __u32 bytes)
{
	struct nf_rule_key k = { .table = table, .index = index };

	nf_count_key(&nf_rule_stats, &k, bytes);
}

/* Identity of a peer address: exact (pods, nodes) before prefixes. */
static __always_inline __u32 nf_identity(const __u8 *addr)
{
	struct nf_addr_lpm_key lk = { .prefixlen = 128 };
	__u32 *id;

	/* Both lookups key from the stack copy: kernels before 6.3 take no map key from a
	 * global function's pointer argument (addr is q->peer in nf_policy_eval). */
	__builtin_memcpy(lk.addr, addr, 16);
	id = bpf_map_lookup_elem(&nf_ident_exact, lk.addr);
	if (id)
		return *id;
	id = bpf_map_lookup_elem(&nf_ident_lpm, &lk);
	return id ? *id : 0;
}

struct nf_query {
	__u8 peer[16];
	__u32 table;  /* base table id */
	__u32 bytes;  /* packet length, for the counters */
	__u16 port;   /* destination port, network order (0 without ports) */
	__u8 proto;
	__u8 chunks;  /* chunks of the table (nf_endpoint.chunks; 0 reads as 1) */
};

/* State of the precedence walk over the matched rules, one chunk at a time. */
struct nf_walk {
	__u64 m[NF_BITMAP_WORDS]; /* matched rules of chunk `chunk`, not yet taken */
	struct nf_verdict v;
	const struct nf_query *q;
	__u32 chunk;
	__u32 skip;     /* global index below which rules are passed over (a Pass's tier end) */
	__u32 identity; /* the peer's (0 = none) */
	__u32 _pad;
};

/* Match set of chunk wk->chunk: (identity bits | CIDR bits) & port bits, minus the
 * rules a Pass of an earlier chunk skipped. Returns whether its port trie matched.
 * `first` (chunk 0, a constant per call site): the peer's identity is looked up
 * once the port matched (a port miss costs one lookup, as it always did), and no
 * Pass can have come before. */
static __always_inline int nf_chunk_match(struct nf_walk *wk, const int first)
{
	struct nf_cidr_key ck = {};
	struct nf_bitmap *bi = NULL, *bc, *bp;
	const struct nf_query *q = wk->q;
	__u32 key = q->table | wk->chunk << NF_CHUNK_SHIFT;
	__u32 key_be = bpf_htonl(key);
	__u16 port = q->port;
	int w;

#pragma unroll
	for (w = 0; w < NF_BITMAP_WORDS; w++)
		wk->m[w] = 0;
	/* Each key in its own block, so the keys share their stack: with the bpf_loop
	 * frames above it, 6.1's verifier caps the call chain at 512 bytes. */
	{
		struct nf_port_key pk = {};

		pk.prefixlen = 32 + 8 + 16;
		pk.proto = q->proto;
		__builtin_memcpy(pk.table, &key_be, 4);
		__builtin_memcpy(pk.port, &port, 2);
		bp = bpf_map_lookup_elem(&nf_ports, &pk);
	}
	if (!bp)
		return 0;

	if (first)
		wk->identity = nf_identity(q->peer);
	if (wk->identity) {
		struct nf_peer_ident_key pik = { .table = key, .identity = wk->identity };

		bi = bpf_map_lookup_elem(&nf_peer_ident, &pik);
	}
	ck.prefixlen = 32 + 128; /* set apart: an initializer lands in .rodata */
	__builtin_memcpy(ck.table, &key_be, 4);
	__builtin_memcpy(ck.addr, q->peer, 16);
	bc = bpf_map_lookup_elem(&nf_peer_cidr, &ck);

	if (bi) {
#pragma unroll
		for (w = 0; w < NF_BITMAP_WORDS; w++)
			wk->m[w] = bi->w[w];
	}
	if (bc) {
#pragma unroll
		for (w = 0; w < NF_BITMAP_WORDS; w++)
			wk->m[w] |= bc->w[w];
	}
#pragma unroll
	for (w = 0; w < NF_BITMAP_WORDS; w++)
		wk->m[w] &= bp->w[w];
	if (!first)
		nf_clear_range(wk->m, 0, (__s64)wk->skip - (__s64)(wk->chunk * NF_CHUNK_RULES));
	return 1;
}

/* One step of the walk (a bpf_loop callback, verified once): take the first
 * matched rule; Allow / Deny decide, Pass clears the rest of its tier (in later
 * chunks too, through wk->skip). A chunk with nothing left moves the walk on to
 * the next chunk, if any. */
static long nf_policy_step(__u32 i, void *ctx)
{
	struct nf_walk *wk = ctx;
	struct nf_rule_key rk = { .table = wk->q->table };
	struct nf_verdict *v = &wk->v;
	struct nf_rule *r;
	__u32 idx, base;

	if (wk->m[0])
		idx = nf_ffs64(wk->m[0]);
	else if (wk->m[1])
		idx = 64 + nf_ffs64(wk->m[1]);
	else if (wk->m[2])
		idx = 128 + nf_ffs64(wk->m[2]);
	else if (wk->m[3])
		idx = 192 + nf_ffs64(wk->m[3]);
	else if (wk->chunk + 1 < wk->q->chunks) {
		wk->chunk++;
		nf_chunk_match(wk, 0);
		return 0;
	} else
		return 1; /* nothing left: default */

	base = wk->chunk * NF_CHUNK_RULES;
	rk.index = base + idx;
	r = bpf_map_lookup_elem(&nf_rules, &rk);
	if (!r || (r->action != NF_ACT_ALLOW && r->action != NF_ACT_DENY)) {
		/* Pass skips the rest of its tier; a rule missing from nf_rules
		 * (mid-update) or of unknown action is skipped alone. */
		__u32 to = r && r->action == NF_ACT_PASS && r->tier_end > rk.index ? r->tier_end : rk.index + 1;

		if (to > wk->skip)
			wk->skip = to;
		nf_clear_range(wk->m, idx, (__s64)to - (__s64)base);
		return 0;
	}
	v->rule_index = rk.index;
	v->action = r->action;
	v->tier = r->tier;
	v->policy_id = r->policy_id;
	v->rule_id = r->rule_id;
	if (r->action == NF_ACT_DENY)
		v->reason = r->tier == NF_TIER_NETPOL ? NF_REASON_ISOLATED : NF_REASON_POLICY_DENY;
	return 1;
}

/* Evaluate q->table for a peer address, protocol and destination port. Counts
 * the packet on the matched rule (or the table's default). Chunk 0 costs what a
 * one-chunk table always did: three lookups, and no walk when its port trie has
 * nothing; later chunks are looked at only while no rule decided. A global
 * function: the verifier checks it once, not once per call site. */
__noinline int nf_policy_eval(const struct nf_query *q, struct nf_verdict *v)
{
	struct nf_walk walk = {};

	if (!q || !v)
		return NF_ACT_NONE;

	v->rule_index = NF_RULE_DEFAULT;
	v->action = NF_ACT_ALLOW;
	v->tier = NF_TIER_DEFAULT;
	v->policy_id = 0;
	v->rule_id = 0;
	v->reason = NF_REASON_NONE;

	/* the last-resort table: nothing to look up, nothing allowed */
	if (q->table == NF_TABLE_DENY) {
		v->action = NF_ACT_DENY;
		v->tier = NF_TIER_NETPOL;
		v->reason = NF_REASON_ISOLATED;
		goto out;
	}
	walk.q = q;
	/* one chunk whose port trie has nothing: default, as before chunks */
	if (!nf_chunk_match(&walk, 1)) {
		if (q->chunks <= 1)
			goto out;
		walk.identity = nf_identity(q->peer);
	}
	if (walk.m[0] | walk.m[1] | walk.m[2] | walk.m[3] || q->chunks > 1) {
		walk.v = *v;
		bpf_loop(NF_POLICY_STEPS + NF_MAX_CHUNKS, nf_policy_step, &walk, 0);
		*v = walk.v;
	}
out:
	nf_count_rule(q->table, v->rule_index, q->bytes);
	return v->action;
}

#endif /* NF_POLICY_H */
