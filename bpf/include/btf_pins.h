/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Every enum of netfence.h pinned into the object's BTF. The wire structs hold
 * enumerated values in fixed-size integer fields, so without a typed object the
 * enums never reach BTF; one never-referenced global per enum puts each there
 * (as bpf2go users do) for bpftool and test/bpf/btf-layout.test.ts.
 * The globals live in a section of their own, which libbpf skips: unlike .rodata it
 * creates no map, so the loaded programs and maps stay as they were.
 */
#ifndef NF_BTF_PINS_H
#define NF_BTF_PINS_H

#include "netfence.h"

#define NF_BTF_PIN(e) const enum e __nf_pin_##e __attribute__((unused, section(".nf_btf_pins")))

NF_BTF_PIN(nf_dir);
NF_BTF_PIN(nf_action);
NF_BTF_PIN(nf_tier);
NF_BTF_PIN(nf_ep_flag);
NF_BTF_PIN(nf_ep_verdict);
NF_BTF_PIN(nf_ct_flag);
NF_BTF_PIN(nf_ct_orig);
NF_BTF_PIN(nf_local_kind);
NF_BTF_PIN(nf_reason);
NF_BTF_PIN(nf_cfg_flag);

#endif /* NF_BTF_PINS_H */
