// The XDP prefilter under BPF_PROG_TEST_RUN: sources inside nf_prefilter drop
// (counted under NF_REASON_PREFILTER), everything else passes.
import test from 'ava';
import { NfReason } from '../../src/wire/abi';
import { encodeAddrLpmKey } from '../../src/wire/addr';
import { encodeU8 } from '../../src/wire/bytes';
import { Classifier, XDP_DROP, XDP_PASS } from './harness';
import { buildObjects } from './objects';
import { arpFrame, packet, truncate, type PacketSpec } from './packets';

buildObjects();
const k = new Classifier('prefilter');
test.after.always(() => k.close());

const verdict = (v: number) => (v === XDP_DROP ? 'DROP' : v === XDP_PASS ? 'PASS' : String(v));

test('deny-CIDR sources drop, other traffic passes', (t) => {
  k.reset();
  for (const cidr of ['10.66.0.0/16', '203.0.113.7/32', 'fd66::/16'])
    k.put('nf_prefilter', encodeAddrLpmKey(cidr), encodeU8(1));
  const tags: PacketSpec['vlans'][] = [
    undefined,
    [5],
    [
      { tpid: 0x88a8, vid: 1 },
      { tpid: 0x8100, vid: 2 },
    ],
  ];
  const cases: [string, string, boolean][] = [
    ['10.66.1.2', '10.1.0.1', true],
    ['10.66.255.255', '192.168.0.1', true],
    ['10.67.0.1', '10.1.0.1', false],
    ['203.0.113.7', '10.1.0.1', true],
    ['203.0.113.8', '10.1.0.1', false],
    ['10.1.0.1', '10.66.1.2', false], // destination inside: not a source match
    ['fd66::1', 'fd00::1', true],
    ['fd67::1', 'fd00::1', false],
  ];
  let drops = 0;
  let bytes = 0;
  for (const vlans of tags)
    for (const [src, dst, drop] of cases) {
      const f = packet({ src, dst, l4: { proto: 'udp', sport: 1, dport: 2 }, vlans });
      t.is(verdict(k.runXdp(f)), drop ? 'DROP' : 'PASS', `${src} -> ${dst}, ${vlans?.length ?? 0} tags`);
      if (drop) {
        drops++;
        bytes += f.length;
      }
    }
  t.is(verdict(k.runXdp(arpFrame())), 'PASS', 'ARP');
  t.is(
    verdict(
      k.runXdp(
        truncate(
          packet({ src: '10.66.0.1', dst: '10.1.0.1', l4: { proto: 'tcp', sport: 1, dport: 2 }, vlans: [3] }),
          14 + 4 + 10,
        ),
      ),
    ),
    'PASS',
    'too short to read the source',
  );
  t.deepEqual(k.reasonStats(NfReason.PREFILTER, 'nf_prefilter_stats'), {
    packets: BigInt(drops),
    bytes: BigInt(bytes),
  });
});
