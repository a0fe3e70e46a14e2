import test from 'ava';
import { buildPacket } from '../../src/trace/packet';
import { matrixPairs, parsePortSpec, resolvePair } from '../../src/trace/probe';
import { namespace, node, pod, snapshot } from '../helpers/snapshot-builders';

test('parsePortSpec: N/PROTO, bare ICMP, clear errors', (t) => {
  t.deepEqual(parsePortSpec('80/TCP'), { protocol: 'TCP', port: 80 });
  t.deepEqual(parsePortSpec('53/udp'), { protocol: 'UDP', port: 53 });
  t.deepEqual(parsePortSpec('icmp'), { protocol: 'ICMP', port: 0 });
  t.deepEqual(parsePortSpec('ICMPv6'), { protocol: 'ICMPv6', port: 0 });
  for (const bad of ['80', 'TCP', '0/TCP', '70000/UDP', '80/FOO', '8/ICMP']) {
    t.throws(() => parsePortSpec(bad), { message: new RegExp(`^parse --port "${bad}"`) }, bad);
  }
});

const s = snapshot({
  namespaces: [namespace('a')],
  nodes: [node('n1', ['192.168.0.1', 'fd00::1'])],
  pods: [pod('a', 'x', ['10.0.0.1', 'fd00:1::1']), pod('a', 'y', ['fd00:1::2']), pod('a', 'z', ['10.0.0.3'])],
});

test('resolvePair: IPv4 first, IPv6 when only it fits both ends, a literal decides', (t) => {
  t.deepEqual(resolvePair(s, 'a/x', 'a/z'), { src: '10.0.0.1', dst: '10.0.0.3' });
  t.deepEqual(resolvePair(s, 'a/x', 'a/y'), { src: 'fd00:1::1', dst: 'fd00:1::2' });
  t.deepEqual(resolvePair(s, 'node/n1', 'fd00:1::2'), { src: 'fd00::1', dst: 'fd00:1::2' });
  t.throws(() => resolvePair(s, 'a/y', 'a/z'), { message: /^resolve a\/(y|z): no IPv/ });
});

test('matrixPairs: ordered pairs of distinct pods with an address of the family', (t) => {
  t.deepEqual(
    matrixPairs(s, 4).map((p) => `${p.from}>${p.to}`),
    ['a/x>a/z', 'a/z>a/x'],
  );
  t.is(matrixPairs(s, 6).length, 2);
});

test('buildPacket: IPv4 TCP SYN and IPv6 UDP with consistent lengths and a valid IPv4 checksum', (t) => {
  const v4 = buildPacket({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 'TCP', sport: 40000, dport: 80 });
  t.is(v4.readUInt16BE(12), 0x0800);
  t.is(v4.readUInt16BE(14 + 2), 40);
  t.is(v4[14 + 9], 6);
  t.is(v4.readUInt16BE(14 + 20 + 2), 80);
  let sum = 0;
  for (let i = 14; i < 34; i += 2) sum += v4.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  t.is(sum, 0xffff, 'IPv4 header checksum');
  const v6 = buildPacket({ src: 'fd00::1', dst: 'fd00::2', protocol: 'UDP', sport: 1, dport: 53 });
  t.is(v6.readUInt16BE(12), 0x86dd);
  t.is(v6.readUInt16BE(14 + 4), 8);
  t.is(v6.length, 14 + 40 + 8);
  t.throws(() => buildPacket({ src: '10.0.0.1', dst: 'fd00::2', protocol: 'TCP', sport: 1, dport: 1 }), {
    message: /one family/,
  });
  t.throws(() => buildPacket({ src: 'fd00::1', dst: 'fd00::2', protocol: 'ICMP', sport: 1, dport: 0 }), {
    message: /ICMP does not fit IPv6/,
  });
});
