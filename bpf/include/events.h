/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Drop accounting: per-reason per-CPU counters (always) and drop events on a
 * ring buffer, at most `events_per_sec` per endpoint per one-second window.
 */
#ifndef NF_EVENTS_H
#define NF_EVENTS_H

#include <bpf/bpf_helpers.h>
#include "netfence.h"
#include "parse.h"
#include "counters.h"
#include "maps.h"

#define NF_NSEC_PER_SEC 1000000000ULL

static __always_inline void nf_count_reason(__u32 reason, __u32 bytes)
{
	nf_count_index(&nf_reason_stats, reason, bytes);
}

/* One more event for this endpoint in the current window? (per_sec > 0) */
static __always_inline int nf_event_allowed(__u32 ep_id, __u32 per_sec, __u64 now)
{
	struct nf_ratelimit *rl;

	rl = bpf_map_lookup_elem(&nf_ratelimit, &ep_id);
	if (!rl || now - rl->window_start_ns >= NF_NSEC_PER_SEC) {
		struct nf_ratelimit fresh = { .window_start_ns = now, .count = 1 };

		bpf_map_update_elem(&nf_ratelimit, &ep_id, &fresh, BPF_ANY);
		return 1;
	}
	if (rl->count >= per_sec)
		return 0;
	__sync_fetch_and_add(&rl->count, 1);
	return 1;
}

/* A subprogram: one copy for every drop site, and its signature keeps struct
 * nf_event in the object's BTF for userspace decoders and bpftool. */
static __noinline void nf_event_fill(struct nf_event *e, const struct nf_drop *d,
				     const struct nf_pkt *p, __u32 ifindex, __u64 now)
{
	e->ts_ns = now;
	e->ep_id = d->ep_id;
	e->ifindex = ifindex;
	e->table = d->table;
	e->policy_id = d->policy_id;
	e->rule_id = d->rule_id;
	e->rule_index = d->rule_index > 0xffff ? 0xffff : d->rule_index;
	e->dir = d->dir;
	e->proto = p->proto;
	e->reason = d->reason;
	e->action = d->action;
	e->sport = p->sport;
	e->dport = p->dport;
	e->_pad = 0;
	__builtin_memcpy(e->saddr, p->saddr, 16);
	__builtin_memcpy(e->daddr, p->daddr, 16);
}

/* Count a drop and emit its event (global: verified once). */
__noinline int nf_emit_drop(const struct nf_drop *d, const struct nf_pkt *p, __u32 ifindex,
			    __u32 per_sec)
{
	struct nf_event *e;
	__u64 now;

	if (!d || !p)
		return 0;
	nf_count_reason(d->reason, p->len);
	/* events off: no clock read (tens of ns in a VM) on a drop */
	if (!per_sec)
		return 0;
	now = bpf_ktime_get_ns();
	if (!nf_event_allowed(d->ep_id, per_sec, now))
		return 0;
	e = bpf_ringbuf_reserve(&nf_events, sizeof(*e), 0);
	if (!e)
		return 0;
	nf_event_fill(e, d, p, ifindex, now);
	bpf_ringbuf_submit(e, 0);
	return 1;
}

#endif /* NF_EVENTS_H */
