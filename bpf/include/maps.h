/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Every map of the tc classifier (netfence.bpf.c), in one place: names and sizes
 * here are the pinned names userspace opens (src/compile/output.ts) and the
 * defaults NetfenceConfig `capacity` overrides at load. The XDP prefilter's two
 * maps stay in prefilter.bpf.c: an object creates every map it declares.
 */
#ifndef NF_MAPS_H
#define NF_MAPS_H

#include <bpf/bpf_helpers.h>
#include "netfence.h"
#include "counters.h"
#include "types.h"

/* --- endpoints and node state --- */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct nf_endpoint);
	__uint(max_entries, 16384);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nf_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct nf_addr);
	__type(value, struct nf_local);
	__uint(max_entries, 32768);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nf_local_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct nf_addr_lpm_key);
	__type(value, __u8);
	__uint(max_entries, 256);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nf_svc_cidrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct nf_config);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nf_config SEC(".maps");

/* NF_EP_SLOTS endpoints x 2 directions x 2 verdicts (NF_EP_COUNTER_INDEX), not
 * one per nf_endpoints entry: values are per CPU (16 B x CPUs each). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct nf_counter);
	__uint(max_entries, NF_EP_SLOTS * 4);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nf_ep_counters SEC(".maps");

/* Endpoints, by id & NF_STACK_ARRIVALS_MASK, that have had a flow flagged
 * NF_CT_F_NO_TUNNEL (it reached them through the node's stack). Only their tc
 * ingress looks up conntrack without tables, to keep such flows' replies on the
 * stack: the rest skip that lookup. Never cleared; a shared slot costs a lookup. */
#define NF_STACK_ARRIVALS_MASK 0xffff
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u8);
	__uint(max_entries, NF_STACK_ARRIVALS_MASK + 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nf_stack_arrivals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct nf_scratch);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME); /* like every map: a reload reuses it */
} nf_scratch SEC(".maps");

/* --- conntrack (conntrack.h) --- */

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct nf_ct_key);
	__type(value, struct nf_ct_val);
	__uint(max_entries, 131072);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nf_ct SEC(".maps");

/* --- policy tables (policy.h) ---
 * max_entries are defaults for 100k CIDRs, 10k pods and 2k policies per node, with room
 * for a replaced table's old and new entries side by side; NetfenceConfig `capacity`
 * overrides them at load. LPM tries and the NO_PREALLOC hashes cost memory per entry
 * (plus 16 B per hash bucket), not per max_entries: only userspace writes them, and
 * nf_rule_stats's first packet per rule allocates once. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct nf_addr);
	__type(value, __u32);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nf_ident_exact SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct nf_addr_lpm_key);
	__type(value, __u32);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nf_ident_lpm SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct nf_peer_ident_key);
	__type(value, struct nf_bitmap);
	__uint(max_entries, 262144);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nf_peer_ident SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct nf_cidr_key);
	__type(value, struct nf_bitmap);
	__uint(max_entries, 262144);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nf_peer_cidr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct nf_port_key);
	__type(value, struct nf_bitmap);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nf_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct nf_rule_key);
	__type(value, struct nf_rule);
	__uint(max_entries, 131072);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nf_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, struct nf_rule_key);
	__type(value, struct nf_counter);
	__uint(max_entries, 131072);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nf_rule_stats SEC(".maps");

/* --- drops (events.h) --- */

NF_REASON_COUNTERS(nf_reason_stats);

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nf_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, __u32);
	__type(value, struct nf_ratelimit);
	__uint(max_entries, 8192);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nf_ratelimit SEC(".maps");

#endif /* NF_MAPS_H */
