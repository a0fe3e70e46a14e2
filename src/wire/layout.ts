// Struct sizes and field offsets (bytes) of bpf/include/netfence.h, keyed by C struct
// and field name; test/bpf/btf-layout.test.ts checks them against the object's BTF.
// Every codec in src/wire/ reads its offsets here.

export const LAYOUT = {
  nf_endpoint: { size: 24, fields: { id: 0, table: 4, flags: 12, revision: 16, chunks: 20, stats_slot: 22 } },
  nf_addr: { size: 16, fields: { a: 0 } },
  nf_addr_lpm_key: { size: 20, fields: { prefixlen: 0, addr: 4 } },
  nf_bitmap: { size: 32, fields: { w: 0 } },
  nf_peer_ident_key: { size: 8, fields: { table: 0, identity: 4 } },
  nf_cidr_key: { size: 24, fields: { prefixlen: 0, table: 4, addr: 8 } },
  nf_port_key: { size: 12, fields: { prefixlen: 0, table: 4, proto: 8, port: 9, _pad: 11 } },
  nf_rule_key: { size: 8, fields: { table: 0, index: 4 } },
  nf_rule: { size: 16, fields: { action: 0, tier: 1, tier_end: 2, policy_id: 4, rule_id: 8, _pad: 12 } },
  nf_counter: { size: 16, fields: { packets: 0, bytes: 8 } },
  nf_ct_key: {
    size: 44,
    fields: { ep_id: 0, _pad0: 4, proto: 5, _pad: 6, addr_lo: 8, addr_hi: 24, port_lo: 40, port_hi: 42 },
  },
  nf_ct_val: { size: 24, fields: { last_seen_ns: 0, revision: 8, rule: 12, flags: 14, orig: 15, expires_ns: 16 } },
  nf_local: { size: 20, fields: { ifindex: 0, kind: 4, pod_mac: 8, host_mac: 14 } },
  nf_config: {
    size: 48,
    fields: {
      layout_version: 0,
      flags: 4,
      tunnel_mark: 8,
      tunnel_mark_mask: 12,
      uplink_ifindex: 16,
      events_per_sec: 20,
      gateway6: 24,
      gateway4: 40,
      _pad: 44,
    },
  },
  nf_event: {
    size: 72,
    fields: {
      ts_ns: 0,
      ep_id: 8,
      ifindex: 12,
      table: 16,
      policy_id: 20,
      rule_id: 24,
      rule_index: 28,
      dir: 30,
      proto: 31,
      reason: 32,
      action: 33,
      sport: 34,
      dport: 36,
      _pad: 38,
      saddr: 40,
      daddr: 56,
    },
  },
  nf_ratelimit: { size: 16, fields: { window_start_ns: 0, count: 8, _pad: 12 } },
} as const;

export type StructName = keyof typeof LAYOUT;

/** Bytes of an address field (nf_addr and every address inside a struct). */
export const ADDR_BYTES = LAYOUT.nf_addr.size;
/** Bytes of a MAC field (nf_local.pod_mac, host_mac). */
export const MAC_BYTES = LAYOUT.nf_local.fields.host_mac - LAYOUT.nf_local.fields.pod_mac;

/** A zeroed value of the struct. */
export function alloc(name: StructName): Buffer {
  return Buffer.alloc(LAYOUT[name].size);
}

/** Refuses a buffer shorter than the struct, naming it. */
export function checkSize(name: StructName, b: Buffer): void {
  if (b.length < LAYOUT[name].size) {
    throw new Error(`decode ${name}: buffer of ${b.length} bytes, need ${LAYOUT[name].size}`);
  }
}
