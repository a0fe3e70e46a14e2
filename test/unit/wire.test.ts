// The wire codecs (src/wire/): address forms, prefixes, keys and values round-trip;
// bad input names the field.
import test from 'ava';
import { formatCidr, toCidr } from '../../src/model/ip';
import { NfCtOrig, NfDir } from '../../src/wire/abi';
import { encodeAddr, bytesToAddr, decodeAddrLpmKey, encodeAddrLpmKey, encodeAddrPooled } from '../../src/wire/addr';
import { decodeConfig, encodeConfig } from '../../src/wire/config';
import { decodeCt, encodeCt } from '../../src/wire/conntrack';
import { epCounterKey, sumPerCpuCounters } from '../../src/wire/counters';
import { chunkCount, decodeEndpoint, encodeEndpoint } from '../../src/wire/endpoint';
import { decodeRateLimit, encodeRateLimit } from '../../src/wire/events';
import { LAYOUT } from '../../src/wire/layout';
import {
  decodeCidrKey,
  decodePeerIdentKey,
  decodePortKey,
  decodeRule,
  encodeCidrKey,
  encodePeerIdentKey,
  encodePortKey,
  encodeRule,
} from '../../src/wire/tables';

test('addresses: IPv4 becomes IPv4-mapped IPv6 and back', (t) => {
  t.is(encodeAddr('10.1.2.3').toString('hex'), '00000000000000000000ffff0a010203');
  t.is(encodeAddr('::ffff:10.1.2.3').toString('hex'), '00000000000000000000ffff0a010203');
  t.is(encodeAddr('fd00::1').toString('hex'), 'fd000000000000000000000000000001');
  for (const a of [
    '10.1.2.3',
    '0.0.0.0',
    'fd00::1',
    '::',
    '::1',
    '1:2:3:4:5:6:7:8',
    'fe80::1:0:0:1',
    '2001:db8::',
    '1:0:0:2::3',
  ])
    t.is(bytesToAddr(encodeAddr(a)), a);
  t.is(bytesToAddr(encodeAddr('1:0:0:2:0:0:0:3')), '1:0:0:2::3', 'longest zero run is compressed');
  t.throws(() => encodeAddr('10.1.2'), { message: /^encode address "10\.1\.2": not an IPv4 or IPv6 address/ });
});

test('addresses: the pooled encoder (a fast path for dotted quads) encodes and refuses as encodeAddr', (t) => {
  const spellings = [
    '10.1.2.3',
    '0.0.0.0',
    '255.255.255.255',
    '192.168.100.9',
    '1.20.255.0',
    '::ffff:10.1.2.3',
    'fd00::1',
    '10.1.2',
    '10.1.2.3.4',
    '10.1.2.',
    '.10.1.2',
    '10..1.2',
    '10.01.2.3',
    '00.1.2.3',
    '256.1.2.3',
    '10.1.2.1000',
    '10.1.2.3 ',
    '10.1.-2.3',
    '',
  ];
  for (const ip of spellings) {
    let want: string;
    try {
      want = encodeAddr(ip).toString('hex');
    } catch (e) {
      t.throws(() => encodeAddrPooled(ip), { message: (e as Error).message }, ip);
      continue;
    }
    t.is(encodeAddrPooled(ip).toString('hex'), want, ip);
  }
});

test('CIDRs: host bits cleared, family prefix lengths, LPM keys', (t) => {
  t.is(formatCidr(toCidr('10.1.2.3/16')), '10.1.0.0/16');
  t.is(formatCidr(toCidr('fd00:1:2::5/33')), 'fd00:1::/33');
  t.is(formatCidr(toCidr('10.1.2.3')), '10.1.2.3/32');
  t.throws(() => toCidr('10.0.0.0/33'), { message: /^parse CIDR "10\.0\.0\.0\/33": bad prefix length "33"/ });
  t.throws(() => toCidr('nope/8'), { message: /^parse CIDR "nope\/8"/ });
  const k = encodeAddrLpmKey('10.0.0.0/8');
  t.is(k.length, LAYOUT.nf_addr_lpm_key.size);
  t.is(k.readUInt32LE(0), 104);
  t.is(formatCidr(decodeAddrLpmKey(k)), '10.0.0.0/8');
  t.is(formatCidr(decodeAddrLpmKey(encodeAddrLpmKey('::/0'))), '::/0');
  const c = encodeCidrKey(0x020304, 'fd00::/8', 1);
  t.is(c.readUInt32LE(0), 32 + 8);
  t.is(c.subarray(4, 8).toString('hex'), '01020304', 'table | chunk << 24, big-endian');
  t.like(decodeCidrKey(c), { table: 0x020304, chunk: 1 });
  t.throws(() => encodeCidrKey(0x1000000, '10.0.0.0/8'), {
    message: /^encode table key: table id 16777216 out of range 0\.\.16777215/,
  });
  t.throws(() => encodeCidrKey(1, '10.0.0.0/8', 64), { message: /^encode table key: chunk 64 out of range 0\.\.63/ });
  t.is(formatCidr(decodeCidrKey(encodeCidrKey(5, '192.168.0.0/24')).cidr), '192.168.0.0/24');
});

test('port keys', (t) => {
  t.is(encodePortKey({ table: 7 }).toString('hex'), '20000000' + '00000007' + '00000000');
  t.is(encodePortKey({ table: 7, proto: 6 }).toString('hex'), '28000000' + '00000007' + '06000000');
  t.is(encodePortKey({ table: 7, proto: 6, port: 443 }).toString('hex'), '38000000' + '00000007' + '0601bb00');
  t.deepEqual(decodePortKey(encodePortKey({ table: 7, proto: 17, port: 1024, portBits: 6 })), {
    table: 7,
    chunk: 0,
    proto: 17,
    port: 1024,
    portBits: 6,
  });
  t.is(
    encodePortKey({ table: 7, chunk: 63 }).toString('hex'),
    '20000000' + '3f000007' + '00000000',
    'chunk in the top byte',
  );
  t.deepEqual(decodePortKey(encodePortKey({ table: 7, chunk: 63 })), { table: 7, chunk: 63 });
  t.deepEqual(decodePeerIdentKey(encodePeerIdentKey(7, 9, 2)), { table: 7, chunk: 2, identity: 9 });
  t.is(encodePeerIdentKey(7, 9, 2).readUInt32LE(0), 0x02000007, 'host order, chunk in the top byte');
  t.is(encodePortKey({ table: 1, proto: 6, port: 0xffff, portBits: 4 }).readUInt16BE(9), 0xf000, 'host bits cleared');
  t.throws(() => encodePortKey({ table: 1, proto: 6, port: 70000 }), {
    message: /^encode port key: port 70000 out of range/,
  });
});

test('values round-trip', (t) => {
  const ep = {
    id: 9,
    ingressTable: 3,
    egressTable: 4,
    ingressChunks: 64,
    egressChunks: 1,
    flags: 5,
    revision: 6,
    statsSlot: 4095,
  };
  t.deepEqual(decodeEndpoint(encodeEndpoint(ep)), ep);
  t.is(encodeEndpoint(ep).readUInt32LE(4), 3, 'table[NF_DIR_INGRESS] first');
  t.is(encodeEndpoint(ep)[LAYOUT.nf_endpoint.fields.chunks], 64, 'chunks[NF_DIR_INGRESS] first');
  t.throws(() => encodeEndpoint({ ...ep, egressChunks: 65 }), {
    message: /^encode nf_endpoint\.egressChunks: 65 out of range 0\.\.64/,
  });
  t.deepEqual([0, 1, 256, 257, 16384].map(chunkCount), [0, 1, 1, 2, 64]);
  const r = { action: 3, tier: 1, tierEnd: 17, policyId: 1000, ruleId: 2 };
  t.deepEqual(decodeRule(encodeRule(r)), r);
  t.is(epCounterKey(3, 1, 1).readUInt32LE(0), 3 * 4 + 2 + 1, 'NF_EP_COUNTER_INDEX(slot, dir, verdict)');
  const cfg = {
    layoutVersion: 1,
    flags: 3,
    tunnelMark: 0x100,
    tunnelMarkMask: 0xf00,
    uplinkIfindex: 2,
    eventsPerSec: 10,
    gateway4: '192.168.1.1',
    gateway6: 'fd10::1',
  };
  t.deepEqual(decodeConfig(encodeConfig(cfg)), cfg);
  t.is(encodeConfig(cfg).subarray(40, 44).toString('hex'), 'c0a80101');
  t.throws(() => encodeConfig({ ...cfg, gateway4: 'fd00::1' }), {
    message: /^encode nf_config\.gateway4 "fd00::1": not an IPv4 address/,
  });
  t.deepEqual(decodeRateLimit(encodeRateLimit({ windowStartNs: 5n, count: 2 })), { windowStartNs: 5n, count: 2 });
});

test('per-CPU counters sum over possible CPUs', (t) => {
  const b = Buffer.alloc(16 * 3);
  for (let c = 0; c < 3; c++) {
    b.writeBigUInt64LE(BigInt(c + 1), c * 16);
    b.writeBigUInt64LE(BigInt(100 * (c + 1)), c * 16 + 8);
  }
  t.deepEqual(sumPerCpuCounters(b, 3), { packets: 6n, bytes: 600n });
  t.throws(() => sumPerCpuCounters(b, 4), { message: /^decode per-CPU nf_counter: 48 bytes, need 64/ });
});

test('conntrack: one wire key per flow whichever end a packet comes from; the value says which end opened it', (t) => {
  const val = { lastSeenNs: 123456789n, revision: 4, rule: 0xffff, flags: 3, expiresNs: 10_123456789n };
  const flow = { epId: 1, dir: NfDir.EGRESS, proto: 6, saddr: '10.0.0.9', daddr: '10.0.0.1', sport: 1234, dport: 80 };
  const reply = {
    ...flow,
    dir: NfDir.INGRESS,
    saddr: flow.daddr,
    daddr: flow.saddr,
    sport: flow.dport,
    dport: flow.sport,
  };
  const a = encodeCt(flow, val);
  const b = encodeCt(reply, val);
  t.deepEqual(a.key, b.key, 'both directions share the key');
  t.is(bytesToAddr(a.key.subarray(8, 24)), '10.0.0.1', 'the lower address first');
  t.is(a.key.readUInt16BE(40), 80, 'with its port, in network order');
  t.is(a.value[15], NfCtOrig.EGRESS | NfCtOrig.SRC_HI, 'opened from the hi end, egress');
  t.is(b.value[15], 0, 'the reverse flow: opened from the lo end, ingress');
  t.deepEqual(decodeCt(a.key, a.value), { key: flow, val });
  t.deepEqual(decodeCt(b.key, b.value), { key: reply, val });
  // equal addresses: the ports decide
  const self = { ...flow, daddr: flow.saddr, sport: 5000, dport: 80 };
  t.is(encodeCt(self, val).key.readUInt16BE(40), 80);
  t.deepEqual(decodeCt(encodeCt(self, val).key, encodeCt(self, val).value).key, self);
  const v6 = { ...flow, saddr: 'fd00::2', daddr: '10.0.0.1' };
  t.deepEqual(decodeCt(encodeCt(v6, val).key, encodeCt(v6, val).value).key, v6);
});
