/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * The node's own state as the hook roles read it: endpoints by interface, local
 * pod / node addresses, service CIDRs, the global config, the per-CPU scratch and
 * the per-endpoint counters.
 */
#ifndef NF_NODE_H
#define NF_NODE_H

#include <bpf/bpf_helpers.h>
#include "netfence.h"
#include "counters.h"
#include "maps.h"
#include "types.h"

static __always_inline const struct nf_endpoint *nf_endpoint_of(__u32 ifindex)
{
	return bpf_map_lookup_elem(&nf_endpoints, &ifindex);
}

static __always_inline int nf_has_tables(const struct nf_endpoint *ep)
{
	return ep->table[0] != NF_TABLE_NONE || ep->table[1] != NF_TABLE_NONE;
}

static __always_inline __u8 *nf_stack_arrival(const struct nf_endpoint *ep)
{
	__u32 slot = ep->id & NF_STACK_ARRIVALS_MASK;

	return bpf_map_lookup_elem(&nf_stack_arrivals, &slot);
}

static __always_inline struct nf_scratch *nf_scratch_of_cpu(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&nf_scratch, &zero);
}

/* This CPU's scratch, reset for a new packet. */
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

/* Count a decided packet on its endpoint's counter slot (slot 0: not counted). */
static __always_inline void nf_count_ep(__u32 slot, __u32 dir, __u32 verdict, __u32 bytes)
{
	if (slot)
		nf_count_index(&nf_ep_counters, NF_EP_COUNTER_INDEX(slot, dir & 1, verdict & 1), bytes);
}

#endif /* NF_NODE_H */
