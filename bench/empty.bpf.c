/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* The baseline of the per-packet benchmark: a tc program that does nothing. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#define SEC(name) __attribute__((section(name), used))

SEC("tc")
int bench_empty(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

char _license[] SEC("license") = "Dual BSD/GPL";
