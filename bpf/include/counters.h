/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * struct nf_counter updates shared by the classifier and the prefilter: per-reason
 * drop counters (one layout, read by the same user-space code) and per-key
 * counters created on first use.
 */
#ifndef NF_COUNTERS_H
#define NF_COUNTERS_H

#include <bpf/bpf_helpers.h>
#include "netfence.h"

/* A per-CPU array of drop counters indexed by NF_REASON_*, pinned by name. */
#define NF_REASON_COUNTERS(name)                                       \
	struct {                                                       \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);               \
		__type(key, __u32);                                    \
		__type(value, struct nf_counter);                      \
		__uint(max_entries, NF_REASON_MAX);                    \
		__uint(pinning, LIBBPF_PIN_BY_NAME);                   \
	} name SEC(".maps")

static __always_inline void nf_counter_add(struct nf_counter *c, __u32 bytes)
{
	c->packets++;
	c->bytes += bytes;
}

/* One packet on the array counter `index` of `map` (out of range: not counted). */
static __always_inline void nf_count_index(void *map, __u32 index, __u32 bytes)
{
	struct nf_counter *c = bpf_map_lookup_elem(map, &index);

	if (c)
		nf_counter_add(c, bytes);
}

/* One packet on the hash counter of `key`, created zeroed on first use; 0 if the map is full. */
static __always_inline int nf_count_key(void *map, const void *key, __u32 bytes)
{
	struct nf_counter *c = bpf_map_lookup_elem(map, key);

	if (!c) {
		struct nf_counter zero = {};

		/* NOEXIST then lookup: a racing CPU's first packet is not overwritten */
		bpf_map_update_elem(map, key, &zero, BPF_NOEXIST);
		c = bpf_map_lookup_elem(map, key);
		if (!c)
			return 0;
	}
	nf_counter_add(c, bytes);
	return 1;
}

#endif /* NF_COUNTERS_H */
