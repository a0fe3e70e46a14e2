// The tc classifier under BPF_PROG_TEST_RUN with crafted frames. One unpinned
// object for the file; every test starts from empty maps. The skb of a test run
// sits on loopback (ifindex 1), so the endpoint under test is keyed at 1; other
// endpoints (deferred service checks, tunnel peers) live at made-up ifindexes
// that are only map keys.
import test, { type ExecutionContext } from 'ava';
import {
  IPPROTO,
  NfCfgFlag,
  NfCtFlag,
  NfDir,
  NfEpFlag,
  NfEpVerdict,
  NfLocalKind,
  NfReason,
  NF_RULE_DEFAULT,
  NF_TABLE_DENY,
} from '../../src/wire/abi';
import { Classifier, TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT, type TestEndpoint, type TestRule } from './harness';
import { buildObjects } from './objects';
import {
  arpFrame,
  l3Offset,
  packet,
  patchByte,
  truncate,
  TCP_ACK,
  type ExtHeader,
  type L4,
  type PacketSpec,
} from './packets';

buildObjects();
const k = new Classifier();
test.after.always(() => k.close());

const HOOK_IF = 1;
const OK = TC_ACT_OK;
const SHOT = TC_ACT_SHOT;

const ANY: TestRule['peers'] = [{ cidr: '0.0.0.0/0' }, { cidr: '::/0' }];
const DENY_ALL: TestRule = { action: 'deny', tier: 'netpol', peers: ANY };

function pod(over: Partial<TestEndpoint> = {}): TestEndpoint {
  return { id: 10, ingressTable: 0, egressTable: 0, flags: NfEpFlag.POD, revision: 1, ...over };
}

/** From the pod under test (tc ingress hook) and to it (tc egress hook). */
function fromPod(frame: Buffer) {
  return k.run('ingress', frame).verdict;
}
function toPod(frame: Buffer) {
  return k.run('egress', frame).verdict;
}

let sport = 20000;
function nextPort(): number {
  sport = sport >= 60000 ? 20000 : sport + 1;
  return sport;
}

function l4(proto: 'tcp' | 'udp' | 'sctp' | 'icmp' | 'icmpv6', dport: number, sp = nextPort()): L4 {
  if (proto === 'icmp') return { proto, type: 8, id: sp };
  if (proto === 'icmpv6') return { proto, type: 128, id: sp };
  return { proto, sport: sp, dport };
}

function verdictName(v: number): string {
  return v === OK ? 'OK' : v === SHOT ? 'SHOT' : String(v);
}

function expectRun(t: ExecutionContext, got: number, want: number, label: string): void {
  t.is(verdictName(got), verdictName(want), label);
}

test.beforeEach(() => k.reset());

// ---- verdict matrix over families, protocols, ports and peers -------------------

const V4 = { src: '10.1.0.1', inside: '10.2.0.5', outside: '10.9.0.5' };
const V6 = { src: 'fd00:1::1', inside: 'fd00:2::5', outside: 'fd00:9::5' };

const MATRIX_TABLE: TestRule[] = [
  {
    action: 'allow',
    tier: 'netpol',
    peers: [{ cidr: '10.2.0.0/16' }, { cidr: 'fd00:2::/64' }],
    ports: [{ proto: IPPROTO.TCP, port: 80 }],
  },
  { action: 'allow', tier: 'netpol', peers: ANY, ports: [{ proto: IPPROTO.UDP, port: 53 }] },
  {
    action: 'allow',
    tier: 'netpol',
    peers: [{ cidr: 'fd00:2::/64' }, { cidr: '10.2.0.0/16' }],
    ports: [{ proto: IPPROTO.SCTP, port: 3868 }],
  },
  { action: 'allow', tier: 'netpol', peers: [{ cidr: '10.2.0.0/16' }], ports: [{ proto: IPPROTO.ICMP }] },
  { action: 'allow', tier: 'netpol', peers: [{ cidr: 'fd00:2::/64' }], ports: [{ proto: IPPROTO.ICMPV6 }] },
  {
    action: 'allow',
    tier: 'netpol',
    peers: [{ cidr: '10.2.0.0/16' }, { cidr: 'fd00:2::/64' }],
    ports: [{ proto: IPPROTO.TCP, port: 8000, endPort: 8100 }],
  },
  DENY_ALL,
];

type Proto = 'tcp' | 'udp' | 'sctp' | 'icmp' | 'icmpv6';
/** The matrix table, written out as a predicate. */
function matrixAllows(proto: Proto, port: number, inside: boolean): boolean {
  switch (proto) {
    case 'tcp':
      return inside && (port === 80 || (port >= 8000 && port <= 8100));
    case 'udp':
      return port === 53;
    case 'sctp':
      return inside && port === 3868;
    case 'icmp':
    case 'icmpv6':
      return inside;
  }
}

const MATRIX_PORTS = [53, 80, 3868, 7999, 8000, 8050, 8100, 8101];

for (const [fam, a] of [
  ['v4', V4],
  ['v6', V6],
] as const) {
  test.serial(`egress verdicts ${fam}: every protocol, port and peer`, (t) => {
    k.endpoint(HOOK_IF, pod({ egressTable: 5 }));
    k.table(5, MATRIX_TABLE);
    const protos: Proto[] = fam === 'v4' ? ['tcp', 'udp', 'sctp', 'icmp'] : ['tcp', 'udp', 'sctp', 'icmpv6'];
    for (const proto of protos)
      for (const port of MATRIX_PORTS)
        for (const inside of [true, false]) {
          const dst = inside ? a.inside : a.outside;
          const got = fromPod(packet({ src: a.src, dst, l4: l4(proto, port) }));
          expectRun(t, got, matrixAllows(proto, port, inside) ? OK : SHOT, `${proto} ${dst} port ${port}`);
        }
  });

  test.serial(`ingress verdicts ${fam}: the peer is the source`, (t) => {
    k.endpoint(HOOK_IF, pod({ ingressTable: 6 }));
    k.table(6, MATRIX_TABLE);
    for (const proto of ['tcp', 'udp', 'sctp'] as const)
      for (const port of [53, 80, 3868, 8100])
        for (const inside of [true, false]) {
          const src = inside ? a.inside : a.outside;
          const got = toPod(packet({ src, dst: a.src, l4: l4(proto, port) }));
          expectRun(t, got, matrixAllows(proto, port, inside) ? OK : SHOT, `${proto} from ${src} port ${port}`);
        }
    // the egress direction has no table: anything leaves
    expectRun(t, fromPod(packet({ src: a.src, dst: a.outside, l4: l4('tcp', 9) })), OK, 'no egress table');
  });
}

// ---- L2 encapsulations, fragments, extension headers ---------------------------

test.serial('802.1Q, QinQ and triple tags give the untagged verdicts', (t) => {
  k.endpoint(HOOK_IF, pod({ egressTable: 5 }));
  k.table(5, MATRIX_TABLE);
  const tagSets: PacketSpec['vlans'][] = [
    [100],
    [
      { tpid: 0x88a8, vid: 10 },
      { tpid: 0x8100, vid: 20 },
    ],
    [
      { tpid: 0x8100, vid: 10 },
      { tpid: 0x8100, vid: 20 },
    ],
    [
      { tpid: 0x88a8, vid: 1 },
      { tpid: 0x8100, vid: 2 },
      { tpid: 0x8100, vid: 3 },
    ],
  ];
  for (const vlans of tagSets)
    for (const [a, proto] of [
      [V4, 'tcp'],
      [V6, 'tcp'],
      [V4, 'udp'],
      [V6, 'sctp'],
    ] as const)
      for (const inside of [true, false]) {
        const port = proto === 'udp' ? 53 : proto === 'sctp' ? 3868 : 80;
        const dst = inside ? a.inside : a.outside;
        const got = fromPod(packet({ src: a.src, dst, l4: l4(proto, port), vlans }));
        expectRun(t, got, matrixAllows(proto, port, inside) ? OK : SHOT, `${vlans!.length} tags ${proto} ${dst}`);
      }
});

test.serial('IPv4 options and fragments: non-first fragments match only port-less rules', (t) => {
  k.endpoint(HOOK_IF, pod({ egressTable: 5 }));
  k.table(5, [
    { action: 'allow', tier: 'netpol', peers: [{ cidr: '10.2.0.0/16' }], ports: [{ proto: IPPROTO.UDP, port: 53 }] },
    { action: 'allow', tier: 'netpol', peers: [{ cidr: '10.3.0.0/16' }], ports: [{ proto: IPPROTO.UDP }] },
    DENY_ALL,
  ]);
  const src = V4.src;
  const opts = Buffer.from([0x01, 0x01, 0x01, 0x00]); // NOPs, end of options
  expectRun(t, fromPod(packet({ src, dst: '10.2.0.1', l4: l4('udp', 53), v4options: opts })), OK, 'options, allowed');
  expectRun(t, fromPod(packet({ src, dst: '10.2.0.1', l4: l4('udp', 54), v4options: opts })), SHOT, 'options, denied');
  const big = Buffer.alloc(36, 0x01); // 9 words of options (ihl 14)
  expectRun(t, fromPod(packet({ src, dst: '10.2.0.1', l4: l4('udp', 53), v4options: big })), OK, 'long options');
  const first = { offset: 0, mf: true };
  expectRun(
    t,
    fromPod(packet({ src, dst: '10.2.0.1', l4: l4('udp', 53), frag: first })),
    OK,
    'first fragment, port 53',
  );
  expectRun(
    t,
    fromPod(packet({ src, dst: '10.2.0.1', l4: l4('udp', 99), frag: first })),
    SHOT,
    'first fragment, port 99',
  );
  for (const offset of [1, 185, 8191]) {
    const rest = { offset, mf: offset !== 8191 };
    expectRun(
      t,
      fromPod(packet({ src, dst: '10.2.0.1', l4: l4('udp', 53), frag: rest })),
      SHOT,
      `non-first ${offset} vs port rule`,
    );
    expectRun(
      t,
      fromPod(packet({ src, dst: '10.3.0.1', l4: l4('udp', 53), frag: rest })),
      OK,
      `non-first ${offset} vs protocol rule`,
    );
    expectRun(
      t,
      fromPod(packet({ src, dst: '10.3.0.1', l4: l4('tcp', 53), frag: rest })),
      SHOT,
      `non-first ${offset} other protocol`,
    );
  }
  t.is(k.conntrack().filter((e) => e.key.sport === 0).length, 0, 'fragments without ports create no conntrack entry');
});

test.serial('IPv6 extension headers are walked to the L4 header', (t) => {
  k.endpoint(HOOK_IF, pod({ egressTable: 5 }));
  k.table(5, [
    { action: 'allow', tier: 'netpol', peers: [{ cidr: 'fd00:2::/64' }], ports: [{ proto: IPPROTO.TCP, port: 443 }] },
    { action: 'allow', tier: 'netpol', peers: [{ cidr: 'fd00:3::/64' }], ports: [{ proto: IPPROTO.UDP }] },
    DENY_ALL,
  ]);
  const chains: ExtHeader[][] = [
    ['hop'],
    ['route'],
    ['dest'],
    ['ah'],
    ['hop', 'route', 'dest'],
    ['hop', 'dest', 'route', 'ah', 'dest'],
    [{ frag: { offset: 0, mf: true } }],
    ['hop', { frag: { offset: 0, mf: true } }, 'dest'],
  ];
  for (const ext of chains) {
    const name = ext.map((e) => (typeof e === 'string' ? e : 'frag')).join('+');
    expectRun(t, fromPod(packet({ src: V6.src, dst: 'fd00:2::1', l4: l4('tcp', 443), ext })), OK, `${name}: tcp 443`);
    expectRun(t, fromPod(packet({ src: V6.src, dst: 'fd00:2::1', l4: l4('tcp', 444), ext })), SHOT, `${name}: tcp 444`);
  }
  const later = { frag: { offset: 100, mf: false } };
  expectRun(
    t,
    fromPod(packet({ src: V6.src, dst: 'fd00:2::1', l4: l4('tcp', 443), ext: [later] })),
    SHOT,
    'non-first fragment vs port rule',
  );
  expectRun(
    t,
    fromPod(packet({ src: V6.src, dst: 'fd00:3::1', l4: l4('udp', 9), ext: ['hop', later] })),
    OK,
    'non-first fragment vs protocol rule',
  );
  const tooMany: ExtHeader[] = Array(9).fill('dest');
  expectRun(
    t,
    fromPod(packet({ src: V6.src, dst: 'fd00:2::1', l4: l4('tcp', 443), ext: tooMany })),
    SHOT,
    'nine extension headers: malformed',
  );
  t.is(k.reasonStats(NfReason.MALFORMED).packets, 1n);
});

// ---- malformed and truncated ----------------------------------------------------

function malformedFrames(): [string, Buffer][] {
  const v4 = { src: V4.src, dst: V4.inside };
  const v6 = { src: V6.src, dst: V6.inside };
  const tcp4 = packet({ ...v4, l4: l4('tcp', 80) });
  const tcp6 = packet({ ...v6, l4: l4('tcp', 80) });
  const udp4 = packet({ ...v4, l4: l4('udp', 53) });
  const off = l3Offset({});
  const withTotLen = (f: Buffer, len: number) => {
    const b = Buffer.from(f);
    b.writeUInt16BE(len, off + 2);
    return b;
  };
  // BPF_PROG_TEST_RUN refuses untagged IP frames shorter than the IP header, so
  // cut L3 headers are crafted behind a VLAN tag (the kernel does not look there).
  const tagged = { vlans: [7] };
  const toff = l3Offset(tagged);
  return [
    ['VLAN-tagged IPv4 header cut', truncate(packet({ ...v4, l4: l4('tcp', 80), ...tagged }), toff + 12)],
    ['QinQ IPv4 header cut', truncate(packet({ ...v4, l4: l4('tcp', 80), vlans: [7, 8] }), toff + 4 + 19)],
    ['VLAN-tagged IPv6 header cut', truncate(packet({ ...v6, l4: l4('tcp', 80), ...tagged }), toff + 30)],
    ['IPv4 ihl 4', patchByte(tcp4, off, 0x44)],
    ['IPv4 version 5', patchByte(tcp4, off, 0x55)],
    ['IPv4 tot_len past the frame', withTotLen(tcp4, 400)],
    ['IPv4 tot_len below the header', withTotLen(tcp4, 16)],
    ['IPv4 options past tot_len', patchByte(withTotLen(tcp4, 24), off, 0x47)],
    ['TCP header cut', truncate(tcp4, off + 20 + 12)],
    ['TCP data offset 4', patchByte(tcp4, off + 20 + 12, 0x40)],
    ['TCP data offset past the packet', patchByte(tcp4, off + 20 + 12, 0xf0)],
    ['TCP header past tot_len', withTotLen(tcp4, 30)],
    ['UDP header cut', truncate(udp4, off + 20 + 6)],
    ['SCTP header cut', truncate(packet({ ...v4, l4: l4('sctp', 1) }), off + 20 + 10)],
    ['ICMP header cut', truncate(packet({ ...v4, l4: l4('icmp', 0) }), off + 20 + 4)],
    ['IPv6 version 4', patchByte(tcp6, off, 0x40)],
    [
      'IPv6 payload_len past the frame',
      (() => {
        const b = Buffer.from(tcp6);
        b.writeUInt16BE(900, off + 4);
        return b;
      })(),
    ],
    ['IPv6 TCP header cut', truncate(tcp6, off + 40 + 10)],
    ['IPv6 extension header cut', truncate(packet({ ...v6, l4: l4('tcp', 80), ext: ['hop'] }), off + 40 + 4)],
    ['ICMPv6 header cut', truncate(packet({ ...v6, l4: l4('icmpv6', 0) }), off + 40 + 3)],
  ];
}

test.serial('malformed and truncated headers drop when the direction has a table', (t) => {
  k.endpoint(HOOK_IF, pod({ egressTable: 5 }));
  // everything would be allowed: the drops come from the parser
  k.table(5, [{ action: 'allow', tier: 'netpol', peers: ANY }]);
  const frames = malformedFrames();
  for (const [name, f] of frames) expectRun(t, fromPod(f), SHOT, name);
  t.is(k.reasonStats(NfReason.MALFORMED).packets, BigInt(frames.length));
  // the ingress direction has no table: malformed packets pass there
  for (const [name, f] of frames) expectRun(t, toPod(f), OK, `${name} (no table)`);
  t.is(k.reasonStats(NfReason.MALFORMED).packets, BigInt(frames.length));
});

test.serial('neighbour discovery, ARP and non-IP are never dropped', (t) => {
  k.endpoint(HOOK_IF, pod({ ingressTable: 6, egressTable: 6 }));
  k.table(6, [DENY_ALL]);
  for (const type of [133, 134, 135, 136, 137])
    for (const vlans of [undefined, [5]]) {
      const f = packet({ src: 'fe80::1', dst: 'ff02::1:ff00:1', l4: { proto: 'icmpv6', type }, vlans });
      expectRun(t, fromPod(f), OK, `ND type ${type} from the pod${vlans ? ' (tagged)' : ''}`);
      expectRun(t, toPod(f), OK, `ND type ${type} to the pod${vlans ? ' (tagged)' : ''}`);
    }
  for (const vlans of [undefined, [5], [6, 7]]) {
    expectRun(t, fromPod(arpFrame(vlans)), OK, `ARP ${vlans?.length ?? 0} tags`);
    expectRun(t, toPod(arpFrame(vlans)), OK, `ARP ${vlans?.length ?? 0} tags, to the pod`);
  }
  const lldp = Buffer.from(arpFrame());
  lldp.writeUInt16BE(0x88cc, 12);
  expectRun(t, fromPod(lldp), OK, 'LLDP');
  expectRun(
    t,
    fromPod(packet({ src: 'fe80::1', dst: 'fe80::2', l4: { proto: 'icmpv6', type: 128, id: 1 } })),
    SHOT,
    'echo is policed',
  );
  expectRun(
    t,
    fromPod(packet({ src: 'fe80::1', dst: 'fe80::2', l4: { proto: 'icmpv6', type: 1 } })),
    SHOT,
    'unreachable is policed',
  );
});

test.serial('unknown interfaces, table 0 and flagless endpoints pass', (t) => {
  const f = packet({ src: V4.src, dst: V4.outside, l4: l4('tcp', 1) });
  expectRun(t, fromPod(f), OK, 'no endpoint');
  expectRun(t, toPod(f), OK, 'no endpoint, egress hook');
  k.table(6, [DENY_ALL]);
  k.endpoint(HOOK_IF, pod({ flags: 0, ingressTable: 6, egressTable: 6 }));
  expectRun(t, fromPod(f), OK, 'endpoint without POD/HOST flag');
  k.endpoint(HOOK_IF, pod({ ingressTable: 6 }));
  expectRun(t, fromPod(f), OK, 'egress table 0');
  expectRun(t, toPod(f), SHOT, 'ingress table 6');
  expectRun(
    t,
    toPod(packet({ src: V4.src, dst: V4.outside, l4: { proto: 'raw', number: 47 } })),
    SHOT,
    'GRE matched by protocol rules',
  );
});

// ---- peers: identities, CIDR except, port ranges --------------------------------

test.serial('identities (exact and prefix) OR CIDR peers; except prefixes carve holes', (t) => {
  k.endpoint(HOOK_IF, pod({ egressTable: 5 }));
  k.identity('10.1.5.5', 42);
  k.identity('fd00:1::5', 42);
  k.identityPrefix('10.9.0.0/16', 43);
  k.identityPrefix('10.9.9.0/24', 44);
  k.table(5, [
    {
      action: 'allow',
      tier: 'netpol',
      peers: [
        { cidr: '10.0.0.0/8', except: ['10.1.0.0/16', '10.9.0.0/16'] },
        { cidr: 'fd00::/16', except: ['fd00:1::/32'] },
      ],
    },
    { action: 'allow', tier: 'netpol', peers: [{ cidr: '10.1.2.0/24', except: ['10.1.2.128/25'] }] },
    { action: 'allow', tier: 'netpol', peers: [{ identity: 42 }, { identity: 44 }] },
    DENY_ALL,
  ]);
  const cases: [string, boolean][] = [
    ['10.2.3.4', true],
    ['10.255.255.255', true],
    ['10.1.5.6', false],
    ['10.1.5.5', true], // identity 42 inside the except
    ['10.1.2.3', true], // rule 1
    ['10.1.2.200', false], // rule 1's own except
    ['10.9.1.1', false], // identity 43: no rule
    ['10.9.9.9', true], // identity 44 from the longer prefix
    ['11.0.0.1', false],
    ['fd00:2::1', true],
    ['fd00:1::6', false],
    ['fd00:1::5', true],
    ['fd01::1', false],
    ['::a02:304', false], // same low 32 bits as 10.2.3.4, but IPv6: not the mapped form
  ];
  for (const [dst, allow] of cases) {
    const src = dst.includes(':') ? V6.src : V4.src;
    expectRun(t, fromPod(packet({ src, dst, l4: l4('tcp', 80) })), allow ? OK : SHOT, dst);
  }
});

test.serial('port ranges decompose into LPM prefixes', (t) => {
  k.endpoint(HOOK_IF, pod({ egressTable: 5 }));
  k.table(5, [
    {
      action: 'allow',
      tier: 'netpol',
      peers: ANY,
      ports: [
        { proto: IPPROTO.TCP, port: 1000, endPort: 2000 },
        { proto: IPPROTO.UDP, port: 0, endPort: 65535 },
      ],
    },
    {
      action: 'allow',
      tier: 'netpol',
      peers: ANY,
      ports: [
        { proto: IPPROTO.TCP, port: 32768, endPort: 32768 },
        { proto: IPPROTO.SCTP, port: 1, endPort: 3 },
      ],
    },
    DENY_ALL,
  ]);
  const cases: [Proto, number, boolean][] = [
    ['tcp', 999, false],
    ['tcp', 1000, true],
    ['tcp', 1001, true],
    ['tcp', 1023, true],
    ['tcp', 1024, true],
    ['tcp', 1535, true],
    ['tcp', 1536, true],
    ['tcp', 1999, true],
    ['tcp', 2000, true],
    ['tcp', 2001, false],
    ['tcp', 32767, false],
    ['tcp', 32768, true],
    ['tcp', 32769, false],
    ['tcp', 0, false],
    ['tcp', 65535, false],
    ['udp', 0, true],
    ['udp', 1, true],
    ['udp', 65535, true],
    ['sctp', 0, false],
    ['sctp', 1, true],
    ['sctp', 2, true],
    ['sctp', 3, true],
    ['sctp', 4, false],
  ];
  for (const [proto, port, allow] of cases)
    expectRun(
      t,
      fromPod(packet({ src: V4.src, dst: V4.outside, l4: l4(proto, port) })),
      allow ? OK : SHOT,
      `${proto} ${port}`,
    );
});

// ---- tiers, Pass, counters ------------------------------------------------------

test.serial('Pass skips the rest of its tier; deny reasons follow the tier', (t) => {
  k.endpoint(HOOK_IF, pod({ egressTable: 5 }));
  k.table(5, [
    { action: 'pass', tier: 'admin', peers: [{ cidr: '10.3.0.0/16' }] },
    { action: 'deny', tier: 'admin', peers: [{ cidr: '10.0.0.0/8' }] },
    { action: 'allow', tier: 'netpol', peers: [{ cidr: '10.3.0.0/16' }], ports: [{ proto: IPPROTO.TCP, port: 80 }] },
    DENY_ALL,
    { action: 'allow', tier: 'baseline', peers: ANY },
  ]);
  expectRun(t, fromPod(packet({ src: V4.src, dst: '10.3.0.5', l4: l4('tcp', 80) })), OK, 'passed into netpol allow');
  expectRun(
    t,
    fromPod(packet({ src: V4.src, dst: '10.3.0.5', l4: l4('tcp', 81) })),
    SHOT,
    'passed into the isolation deny',
  );
  expectRun(t, fromPod(packet({ src: V4.src, dst: '10.4.0.5', l4: l4('tcp', 80) })), SHOT, 'admin deny');
  t.is(k.reasonStats(NfReason.ISOLATED).packets, 1n);
  t.is(k.reasonStats(NfReason.POLICY_DENY).packets, 1n);
  t.is(k.ruleStats(5, 0).packets, 0n, 'Pass itself is not a verdict');
  t.is(k.ruleStats(5, 2).packets, 1n);
  t.is(k.ruleStats(5, 3).packets, 1n);
  t.is(k.ruleStats(5, 1).packets, 1n);

  // Pass from admin into baseline (no netpol rules in between)
  k.table(7, [
    { action: 'pass', tier: 'admin', peers: ANY },
    { action: 'deny', tier: 'admin', peers: ANY },
    { action: 'allow', tier: 'baseline', peers: [{ cidr: '10.5.0.0/16' }] },
    { action: 'deny', tier: 'baseline', peers: ANY },
  ]);
  k.endpoint(HOOK_IF, pod({ egressTable: 7 }));
  expectRun(t, fromPod(packet({ src: V4.src, dst: '10.5.0.1', l4: l4('udp', 5) })), OK, 'pass to baseline allow');
  expectRun(t, fromPod(packet({ src: V4.src, dst: '10.6.0.1', l4: l4('udp', 5) })), SHOT, 'pass to baseline deny');
  t.is(k.reasonStats(NfReason.POLICY_DENY).packets, 2n, 'baseline deny is a policy deny');
});

test.serial('Pass clears bits across bitmap words; the last rule index works', (t) => {
  k.endpoint(HOOK_IF, pod({ egressTable: 9 }));
  const rules: TestRule[] = [];
  for (let i = 0; i < 256; i++) {
    let r: TestRule;
    if (i === 10) r = { action: 'pass', tier: 'admin', peers: [{ cidr: '10.7.0.0/16' }] };
    else if (i < 130) r = { action: 'deny', tier: 'admin', peers: [{ cidr: `10.7.${i}.0/24` }] };
    else if (i === 200)
      r = {
        action: 'allow',
        tier: 'netpol',
        peers: [{ cidr: '10.7.0.0/16' }],
        ports: [{ proto: IPPROTO.TCP, port: 1 }],
      };
    else if (i === 255) r = { action: 'deny', tier: 'baseline', peers: [{ cidr: '10.7.0.0/16' }] };
    else if (i < 200) r = { action: 'deny', tier: 'admin', peers: [{ cidr: `10.8.${i}.0/24` }] };
    else r = { action: 'allow', tier: 'netpol', peers: [{ cidr: `10.8.${i}.0/24` }] };
    rules.push(r);
  }
  k.table(9, rules);
  expectRun(
    t,
    fromPod(packet({ src: V4.src, dst: '10.7.5.1', l4: l4('tcp', 1) })),
    SHOT,
    'deny at 5 precedes the pass at 10',
  );
  expectRun(
    t,
    fromPod(packet({ src: V4.src, dst: '10.7.70.1', l4: l4('tcp', 1) })),
    OK,
    'pass at 10 skips deny at 70 (word 1) into 200',
  );
  expectRun(t, fromPod(packet({ src: V4.src, dst: '10.7.129.1', l4: l4('tcp', 1) })), OK, 'skips deny at 129 (word 2)');
  expectRun(
    t,
    fromPod(packet({ src: V4.src, dst: '10.7.70.1', l4: l4('tcp', 2) })),
    SHOT,
    'falls to baseline rule 255',
  );
  t.is(k.ruleStats(9, 255).packets, 1n);
  t.is(k.ruleStats(9, 200).packets, 2n);
  expectRun(t, fromPod(packet({ src: V4.src, dst: '10.8.220.1', l4: l4('tcp', 2) })), OK, 'allow at 220');
  expectRun(t, fromPod(packet({ src: V4.src, dst: '10.8.150.1', l4: l4('tcp', 2) })), SHOT, 'deny at 150');
});

// ---- tables of several chunks (256 rules each) -----------------------------------

test.serial(
  '700 rules span 3 chunks: a rule of chunk 2 decides, counted by its global index; identities and IPv6 there too',
  (t) => {
    const rules: TestRule[] = Array.from({ length: 699 }, (_, i): TestRule => {
      if (i === 640)
        return {
          action: 'allow',
          tier: 'admin',
          peers: [{ identity: 77 }],
          ports: [{ proto: IPPROTO.TCP, port: 443 }],
        };
      if (i === 650)
        return {
          action: 'allow',
          tier: 'admin',
          peers: [{ cidr: '10.22.138.0/24' }],
          ports: [{ proto: IPPROTO.TCP, port: 80 }],
        };
      if (i === 698)
        return {
          action: 'allow',
          tier: 'admin',
          peers: [{ cidr: 'fd00:700::/32' }],
          ports: [{ proto: IPPROTO.TCP, port: 80 }],
        };
      return {
        action: 'deny',
        tier: 'admin',
        peers: [{ cidr: `10.${20 + (i >> 8)}.${i & 255}.0/24` }],
        ports: [{ proto: IPPROTO.TCP, port: 80 }],
      };
    });
    k.table(11, [...rules, DENY_ALL]);
    k.endpoint(HOOK_IF, pod({ egressTable: 11 }));
    k.identity('10.50.0.7', 77);
    const to = (dst: string, port: number) =>
      fromPod(packet({ src: dst.includes(':') ? V6.src : V4.src, dst, l4: l4('tcp', port) }));
    expectRun(t, to('10.22.138.1', 80), OK, 'allow at 650 (chunk 2)');
    expectRun(t, to('10.20.5.1', 80), SHOT, 'deny at 5 (chunk 0)');
    expectRun(t, to('10.21.5.1', 80), SHOT, 'deny at 261 (chunk 1)');
    expectRun(t, to('10.22.100.1', 80), SHOT, 'deny at 612 (chunk 2)');
    expectRun(t, to('10.50.0.7', 443), OK, 'identity allow at 640: no chunk before has a rule for the port');
    expectRun(t, to('fd00:700::1', 80), OK, 'IPv6 allow at 698');
    expectRun(t, to('10.22.138.1', 81), SHOT, 'the isolation deny at 699');
    for (const [index, packets] of [
      [650, 1n],
      [5, 1n],
      [261, 1n],
      [612, 1n],
      [640, 1n],
      [698, 1n],
      [699, 1n],
    ] as const) {
      t.is(k.ruleStats(11, index).packets, packets, `rule ${index} counted once`);
    }
    t.is(k.reasonStats(NfReason.POLICY_DENY).packets, 3n);
    t.is(k.reasonStats(NfReason.ISOLATED).packets, 1n);
  },
);

test.serial('a Pass in chunk 0 whose tier ends in chunk 2 skips the rest of its tier in chunks 1 and 2', (t) => {
  // admin 0..599 (rule 3 the Pass), netpol 600..609, the isolation deny at 610
  const rules: TestRule[] = Array.from({ length: 610 }, (_, i): TestRule => {
    if (i === 3) return { action: 'pass', tier: 'admin', peers: [{ cidr: '10.30.0.0/16' }] };
    if (i === 100 || i === 270 || i === 550)
      return { action: 'deny', tier: 'admin', peers: [{ cidr: '10.30.0.0/16' }] };
    if (i === 271) return { action: 'deny', tier: 'admin', peers: [{ cidr: '10.33.0.0/16' }] };
    if (i === 605)
      return {
        action: 'allow',
        tier: 'netpol',
        peers: [{ cidr: '10.30.0.0/16' }],
        ports: [{ proto: IPPROTO.TCP, port: 80 }],
      };
    if (i >= 600) return { action: 'allow', tier: 'netpol', peers: [{ cidr: `10.32.${i & 255}.0/24` }] };
    return { action: 'deny', tier: 'admin', peers: [{ cidr: `10.31.${i & 255}.0/24` }] };
  });
  k.table(12, [...rules, DENY_ALL]);
  k.endpoint(HOOK_IF, pod({ egressTable: 12 }));
  expectRun(
    t,
    fromPod(packet({ src: V4.src, dst: '10.30.1.1', l4: l4('tcp', 80) })),
    OK,
    'past the denies at 100, 270 and 550 to the allow at 605',
  );
  expectRun(
    t,
    fromPod(packet({ src: V4.src, dst: '10.30.1.1', l4: l4('tcp', 81) })),
    SHOT,
    'past them to the isolation deny at 610',
  );
  for (const i of [100, 270, 550]) t.is(k.ruleStats(12, i).packets, 0n, `deny at ${i} skipped`);
  t.is(k.ruleStats(12, 605).packets, 1n);
  t.is(k.ruleStats(12, 610).packets, 1n);
  expectRun(
    t,
    fromPod(packet({ src: V4.src, dst: '10.33.1.1', l4: l4('tcp', 80) })),
    SHOT,
    'without the Pass, the admin deny at 271 (chunk 1) decides',
  );
  t.is(k.ruleStats(12, 271).packets, 1n);
  expectRun(t, fromPod(packet({ src: V4.src, dst: '10.32.96.1', l4: l4('tcp', 80) })), OK, 'netpol allow at 608');
});

test.serial(
  'NetworkPolicy isolation as the last rule of a 3-chunk table (alone in chunk 2); the endpoint entry bounds the chunks looked at',
  async (t) => {
    k.watchEvents();
    k.config({ eventsPerSec: 100 });
    // 511 allows of one host each, node-local at 511, the isolation deny at 512
    const allows = Array.from({ length: 511 }, (_, i): TestRule => ({
      action: 'allow',
      tier: 'netpol',
      peers: [{ cidr: `10.40.${i >> 8}.${i & 255}/32` }],
      ports: [{ proto: IPPROTO.TCP, port: 80 }],
    }));
    k.table(13, [...allows, { action: 'allow', tier: 'netpol', peers: [{ cidr: '192.168.0.1/32' }] }, DENY_ALL]);
    k.endpoint(HOOK_IF, pod({ id: 60, ingressTable: 13 }));
    const from = (src: string, port: number) => toPod(packet({ src, dst: V4.src, l4: l4('tcp', port) }));
    expectRun(t, from('10.40.1.144', 80), OK, 'allow at 400 (chunk 1)');
    expectRun(t, from('192.168.0.1', 9), OK, 'node-local at 511');
    expectRun(t, from('10.40.1.144', 81), SHOT, 'isolated: the deny at 512');
    expectRun(t, from('10.99.0.1', 80), SHOT, 'isolated: no allow matches');
    t.is(k.ruleStats(13, 512).packets, 2n);
    t.is(k.reasonStats(NfReason.ISOLATED).packets, 2n);
    const events = await k.takeEvents(2);
    t.deepEqual(
      events.map((e) => [e.table, e.ruleIndex, e.reason]),
      [
        [13, 512, NfReason.ISOLATED],
        [13, 512, NfReason.ISOLATED],
      ],
      'events carry the base table and the global rule index',
    );
    // The program walks as many chunks as the entry says: the compiler writes the count with
    // the table id, in one update.
    k.endpoint(HOOK_IF, pod({ id: 60, ingressTable: 13, ingressChunks: 2 }));
    expectRun(t, from('10.99.0.2', 80), OK, 'chunk 2 not looked at: default');
    t.is(k.ruleStats(13, NF_RULE_DEFAULT).packets, 1n);
  },
);

test.serial('per-rule counters count packets and bytes; no match counts the default', (t) => {
  k.endpoint(HOOK_IF, pod({ egressTable: 5 }));
  k.table(5, [{ action: 'allow', tier: 'netpol', peers: [{ cidr: '10.2.0.0/16' }] }]);
  const f = packet({ src: V4.src, dst: V4.inside, l4: { proto: 'icmp', type: 3 } }); // no conntrack: every packet evaluated
  for (let i = 0; i < 3; i++) expectRun(t, fromPod(f), OK, `allowed ${i}`);
  t.deepEqual(k.ruleStats(5, 0), { packets: 3n, bytes: BigInt(3 * f.length) });
  const g = packet({ src: V4.src, dst: V4.outside, l4: { proto: 'icmp', type: 3 }, payload: Buffer.alloc(100) });
  expectRun(t, fromPod(g), OK, 'default allow');
  t.deepEqual(k.ruleStats(5, NF_RULE_DEFAULT), { packets: 1n, bytes: BigInt(g.length) });
  t.is(k.reasonStats(NfReason.ISOLATED).packets, 0n);
});

test.serial(
  'per-endpoint counters: every decided packet (established, replies, default allow), per endpoint even on a shared table',
  (t) => {
    const { ALLOWED, DENIED } = NfEpVerdict;
    const { INGRESS, EGRESS } = NfDir;
    const ep = (id: number, dir: number, verdict: number) => k.epStats(id, dir, verdict).packets;
    k.table(5, [{ action: 'allow', tier: 'netpol', peers: [{ cidr: '10.2.0.0/16' }] }, DENY_ALL]);
    k.endpoint(HOOK_IF, pod({ id: 10, egressTable: 5 }));
    const out = packet({ src: V4.src, dst: V4.inside, l4: { proto: 'tcp', sport: 4000, dport: 80 } });
    const back = packet({ src: V4.inside, dst: V4.src, l4: { proto: 'tcp', sport: 80, dport: 4000, flags: TCP_ACK } });
    for (let i = 0; i < 4; i++) expectRun(t, fromPod(out), OK, `request ${i}`);
    for (let i = 0; i < 2; i++) expectRun(t, toPod(back), OK, `reply ${i}`);
    expectRun(t, fromPod(packet({ src: V4.src, dst: V4.outside, l4: l4('udp', 53) })), SHOT, 'denied');
    t.is(k.ruleStats(5, 0).packets, 1n, 'the rule counted one evaluation');
    t.deepEqual(
      k.epStats(10, EGRESS, ALLOWED),
      { packets: 4n, bytes: BigInt(4 * out.length) },
      'the endpoint counted every packet of the flow',
    );
    t.is(ep(10, INGRESS, ALLOWED), 2n, 'replies: the ingress direction (no table: default allow)');
    t.is(ep(10, EGRESS, DENIED), 1n);
    t.is(ep(10, INGRESS, DENIED), 0n);

    // another endpoint on the same table has counters of its own
    k.endpoint(HOOK_IF, pod({ id: 11, egressTable: 5 }));
    expectRun(t, fromPod(packet({ src: V4.src, dst: V4.inside, l4: l4('udp', 53) })), OK, 'endpoint 11 allowed');
    t.is(ep(11, EGRESS, ALLOWED), 1n);
    t.is(ep(10, EGRESS, ALLOWED), 4n, 'endpoint 10 unchanged');

    // not decided: non-IP frames; traffic of unknown interfaces
    fromPod(arpFrame());
    t.is(ep(11, EGRESS, ALLOWED) + ep(11, INGRESS, ALLOWED), 1n, 'ARP is not counted');

    // a drop after DNAT counts for the source pod whose egress denied it, not the backend
    k.local('10.244.1.10', 77, NfLocalKind.POD);
    k.endpoint(77, pod({ id: 12, egressTable: 7 }));
    k.table(7, [DENY_ALL]);
    k.endpoint(HOOK_IF, pod({ id: 13 }));
    expectRun(
      t,
      toPod(packet({ src: '10.244.1.10', dst: '10.244.1.20', l4: l4('tcp', 80) })),
      SHOT,
      "denied by the source's egress",
    );
    t.is(ep(12, EGRESS, DENIED), 1n);
    t.is(ep(13, INGRESS, DENIED), 0n);
    expectRun(t, toPod(packet({ src: '10.244.1.99', dst: '10.244.1.20', l4: l4('tcp', 80) })), OK, 'from elsewhere');
    t.is(ep(13, INGRESS, ALLOWED), 1n);
  },
);

// ---- conntrack ------------------------------------------------------------------

for (const [fam, a] of [
  ['v4', V4],
  ['v6', V6],
] as const) {
  test.serial(`conntrack ${fam}: replies pass while the ingress table denies them`, (t) => {
    k.endpoint(HOOK_IF, pod({ ingressTable: 6, egressTable: 0 }));
    k.table(6, [DENY_ALL]);
    const flows: [string, L4, L4][] = [
      ['tcp', { proto: 'tcp', sport: 40000, dport: 443 }, { proto: 'tcp', sport: 443, dport: 40000, flags: TCP_ACK }],
      ['udp', { proto: 'udp', sport: 40001, dport: 53 }, { proto: 'udp', sport: 53, dport: 40001 }],
      ['sctp', { proto: 'sctp', sport: 40002, dport: 3868 }, { proto: 'sctp', sport: 3868, dport: 40002 }],
      fam === 'v4'
        ? ['icmp echo', { proto: 'icmp', type: 8, id: 777 }, { proto: 'icmp', type: 0, id: 777 }]
        : ['icmpv6 echo', { proto: 'icmpv6', type: 128, id: 777 }, { proto: 'icmpv6', type: 129, id: 777 }],
    ];
    for (const [name, out, back] of flows) {
      expectRun(t, toPod(packet({ src: a.outside, dst: a.src, l4: back })), SHOT, `${name}: reply before the request`);
      expectRun(t, fromPod(packet({ src: a.src, dst: a.outside, l4: out })), OK, `${name}: request`);
      expectRun(t, toPod(packet({ src: a.outside, dst: a.src, l4: back })), OK, `${name}: reply`);
      expectRun(t, fromPod(packet({ src: a.src, dst: a.outside, l4: out })), OK, `${name}: request again`);
      expectRun(t, toPod(packet({ src: a.inside, dst: a.src, l4: back })), SHOT, `${name}: same ports, other peer`);
    }
    const wrongId =
      fam === 'v4' ? { proto: 'icmp' as const, type: 0, id: 778 } : { proto: 'icmpv6' as const, type: 129, id: 778 };
    expectRun(t, toPod(packet({ src: a.outside, dst: a.src, l4: wrongId })), SHOT, 'echo reply with another id');
    const ct = k.conntrack();
    t.is(ct.length, 4);
    const tcp = ct.find((e) => e.key.proto === IPPROTO.TCP)!;
    t.like(tcp.key, { epId: 10, dir: NfDir.EGRESS, saddr: a.src, daddr: a.outside, sport: 40000, dport: 443 });
    t.like(tcp.val, { revision: 1, flags: NfCtFlag.SEEN_REPLY, rule: 0xffff });
    t.true(ct.every((e) => (e.val.flags & NfCtFlag.SEEN_REPLY) !== 0));
  });
}

test.serial('conntrack: established inbound flows skip the policy lookup', (t) => {
  k.endpoint(HOOK_IF, pod({ ingressTable: 6, egressTable: 7 }));
  k.table(6, [
    { action: 'allow', tier: 'netpol', peers: [{ cidr: '10.2.0.0/16' }], ports: [{ proto: IPPROTO.TCP, port: 80 }] },
    DENY_ALL,
  ]);
  k.table(7, [DENY_ALL]);
  const syn = packet({ src: V4.inside, dst: V4.src, l4: { proto: 'tcp', sport: 5555, dport: 80 } });
  const synack = packet({ src: V4.src, dst: V4.inside, l4: { proto: 'tcp', sport: 80, dport: 5555, flags: 0x12 } });
  expectRun(t, fromPod(synack), SHOT, 'reply before the flow exists: egress table denies');
  expectRun(t, toPod(syn), OK, 'inbound allowed');
  expectRun(t, fromPod(synack), OK, 'reply passes the deny-all egress table');
  for (let i = 0; i < 5; i++) expectRun(t, toPod(syn), OK, `established ${i}`);
  t.is(k.ruleStats(6, 0).packets, 1n, 'only the first packet was evaluated');
  const [e] = k.conntrack();
  t.like(e.key, { dir: NfDir.INGRESS, saddr: V4.inside, daddr: V4.src, sport: 5555, dport: 80 });
  t.is(e.val.rule, 0);
});

test.serial('revision bump: a new Deny cuts an established flow, still-allowed flows stay', (t) => {
  const allow80: TestRule[] = [
    { action: 'allow', tier: 'netpol', peers: [{ cidr: '10.2.0.0/16' }], ports: [{ proto: IPPROTO.TCP, port: 80 }] },
    DENY_ALL,
  ];
  k.table(6, allow80);
  k.endpoint(HOOK_IF, pod({ ingressTable: 6, revision: 1 }));
  const a = packet({ src: '10.2.0.1', dst: V4.src, l4: { proto: 'tcp', sport: 1111, dport: 80 } });
  const b = packet({ src: '10.2.0.2', dst: V4.src, l4: { proto: 'tcp', sport: 2222, dport: 80 } });
  const aReply = packet({ src: V4.src, dst: '10.2.0.1', l4: { proto: 'tcp', sport: 80, dport: 1111, flags: TCP_ACK } });
  expectRun(t, toPod(a), OK, 'flow a');
  expectRun(t, toPod(b), OK, 'flow b');

  // revision 2: still allowed -> kept, entry moves to the new revision
  k.table(16, allow80);
  k.endpoint(HOOK_IF, pod({ ingressTable: 16, revision: 2 }));
  expectRun(t, toPod(a), OK, 'flow a after a compatible bump');
  t.is(k.conntrack().find((e) => e.key.sport === 1111)!.val.revision, 2);
  t.is(k.ruleStats(16, 0).packets, 1n, 're-evaluated once against the new table');
  expectRun(t, toPod(a), OK, 'flow a, no second re-evaluation');
  t.is(k.ruleStats(16, 0).packets, 1n);

  // revision 3: deny 10.2.0.1 -> flow a cut (request and reply), flow b stays
  k.table(26, [{ action: 'deny', tier: 'admin', peers: [{ cidr: '10.2.0.1/32' }] }, ...allow80]);
  k.endpoint(HOOK_IF, pod({ ingressTable: 26, revision: 3 }));
  expectRun(t, fromPod(aReply), SHOT, 'reply of flow a cut');
  t.is(k.reasonStats(NfReason.REVISION_DENY).packets, 1n);
  t.falsy(
    k.conntrack().find((e) => e.key.sport === 1111),
    'entry removed',
  );
  expectRun(t, toPod(a), SHOT, 'flow a now denied as a new flow');
  t.is(k.reasonStats(NfReason.POLICY_DENY).packets, 1n);
  expectRun(t, toPod(b), OK, 'flow b survives');
  t.is(k.conntrack().find((e) => e.key.sport === 2222)!.val.revision, 3);
});

test.serial('revision bump on the egress side cuts replies of outbound flows', (t) => {
  k.table(7, [{ action: 'allow', tier: 'netpol', peers: ANY }]);
  k.endpoint(HOOK_IF, pod({ egressTable: 7, ingressTable: 6, revision: 1 }));
  k.table(6, [DENY_ALL]);
  const out = packet({ src: V6.src, dst: V6.outside, l4: { proto: 'udp', sport: 3000, dport: 53 } });
  const back = packet({ src: V6.outside, dst: V6.src, l4: { proto: 'udp', sport: 53, dport: 3000 } });
  expectRun(t, fromPod(out), OK, 'query');
  expectRun(t, toPod(back), OK, 'answer');
  k.table(17, [{ action: 'deny', tier: 'admin', peers: [{ cidr: 'fd00:9::/32' }] }]);
  k.endpoint(HOOK_IF, pod({ egressTable: 17, ingressTable: 6, revision: 2 }));
  expectRun(t, toPod(back), SHOT, 'answer after the egress deny');
  t.is(k.reasonStats(NfReason.REVISION_DENY).packets, 1n);
  t.is(k.conntrack().length, 0);
});

// ---- NF_TABLE_DENY: the last resort that needs no map entry ------------------

test.serial(
  'an ingress table of NF_TABLE_DENY drops every packet to the endpoint as isolated, with no map entry; egress unaffected',
  async (t) => {
    k.watchEvents();
    k.config({ eventsPerSec: 100 });
    // No table is written at all: the id alone denies.
    k.endpoint(HOOK_IF, pod({ id: 61, ingressTable: NF_TABLE_DENY, revision: 7 }));
    const frames: Buffer[] = [];
    const protos: number[] = [];
    const PROTO = { tcp: IPPROTO.TCP, udp: IPPROTO.UDP, icmp: IPPROTO.ICMP, icmpv6: IPPROTO.ICMPV6 };
    for (const [a, icmp] of [
      [V4, 'icmp'],
      [V6, 'icmpv6'],
    ] as const) {
      for (const proto of ['tcp', 'udp', icmp] as const)
        for (const peer of [a.inside, a.outside]) {
          frames.push(packet({ src: peer, dst: a.src, l4: l4(proto, 80) }));
          protos.push(PROTO[proto]);
        }
    }
    for (const f of frames) expectRun(t, toPod(f), SHOT, 'to the pod');
    t.is(k.reasonStats(NfReason.ISOLATED).packets, BigInt(frames.length));
    t.is(k.ruleStats(NF_TABLE_DENY, NF_RULE_DEFAULT).packets, BigInt(frames.length), "counted on the table's default");
    t.is(k.conntrack().length, 0, 'a denied flow is never tracked');
    const events = await k.takeEvents(frames.length);
    t.true(
      events.every(
        (e) => e.epId === 61 && e.table === NF_TABLE_DENY && e.reason === NfReason.ISOLATED && e.dir === NfDir.INGRESS,
      ),
    );
    t.deepEqual(
      events.map((e) => e.proto),
      protos,
      'one event per packet, each of its protocol',
    );

    // Egress (no table) passes; the reply of the pod's own flow passes as established.
    const out = packet({ src: V4.src, dst: V4.outside, l4: { proto: 'tcp', sport: 3333, dport: 443 } });
    const back = packet({
      src: V4.outside,
      dst: V4.src,
      l4: { proto: 'tcp', sport: 443, dport: 3333, flags: TCP_ACK },
    });
    expectRun(t, fromPod(out), OK, 'from the pod');
    expectRun(t, toPod(back), OK, 'the reply of its own flow');
    expectRun(t, fromPod(packet({ src: V6.src, dst: V6.outside, l4: l4('udp', 53) })), OK, 'from the pod, v6');
    t.is(k.reasonStats(NfReason.ISOLATED).packets, BigInt(frames.length), 'no more drops');
  },
);

test.serial('moving to NF_TABLE_DENY under a new revision cuts established flows', (t) => {
  k.table(6, [{ action: 'allow', tier: 'netpol', peers: ANY }]);
  k.endpoint(HOOK_IF, pod({ ingressTable: 6, revision: 1 }));
  const a = packet({ src: '10.2.0.1', dst: V4.src, l4: { proto: 'tcp', sport: 1111, dport: 80 } });
  const aReply = packet({ src: V4.src, dst: '10.2.0.1', l4: { proto: 'tcp', sport: 80, dport: 1111, flags: TCP_ACK } });
  expectRun(t, toPod(a), OK, 'flow a');
  t.is(k.conntrack().length, 1);
  k.endpoint(HOOK_IF, pod({ ingressTable: NF_TABLE_DENY, revision: 2 }));
  expectRun(t, fromPod(aReply), SHOT, 'its reply is cut');
  t.is(k.reasonStats(NfReason.REVISION_DENY).packets, 1n);
  t.is(k.conntrack().length, 0, 'entry removed');
  expectRun(t, toPod(a), SHOT, 'and it is denied as a new flow');
  t.is(k.reasonStats(NfReason.ISOLATED).packets, 1n);
});

// ---- host endpoints -------------------------------------------------------------

test.serial(
  'host endpoint: with KEEP_ESTABLISHED a revision bump to a deny keeps established flows; without, it cuts them',
  (t) => {
    const NODE = '192.168.1.10';
    const PEER = '192.168.1.20';
    k.local(NODE, 0, NfLocalKind.NODE);
    k.table(7, [{ action: 'allow', tier: 'admin', peers: ANY }]);
    k.table(17, [DENY_ALL]);
    const host = (over: Partial<TestEndpoint>): TestEndpoint => ({
      id: 1,
      ingressTable: 0,
      egressTable: 7,
      flags: NfEpFlag.HOST,
      revision: 1,
      ...over,
    });
    const out = (sp: number) =>
      packet({ src: NODE, dst: PEER, l4: { proto: 'tcp', sport: sp, dport: 80, flags: TCP_ACK } });
    const back = (sp: number) =>
      packet({ src: PEER, dst: NODE, l4: { proto: 'tcp', sport: 80, dport: sp, flags: TCP_ACK } });
    const fromNode = (sp: number) => k.run('egress', out(sp)).verdict;
    const toNode = (sp: number) => k.run('ingress', back(sp)).verdict;

    for (const keep of [true, false]) {
      const flags = NfEpFlag.HOST | (keep ? NfEpFlag.KEEP_ESTABLISHED : 0);
      const sp = keep ? 41000 : 42000;
      k.endpoint(HOOK_IF, host({ flags, revision: 1 }));
      expectRun(t, fromNode(sp), OK, `${keep}: connection opened before the deny`);
      expectRun(t, toNode(sp), OK, `${keep}: its reply`);
      // the deny: every direction denies everything, new revision
      k.endpoint(HOOK_IF, host({ flags, revision: 2, ingressTable: 17, egressTable: 17 }));
      const cut = k.reasonStats(NfReason.REVISION_DENY).packets;
      if (keep) {
        expectRun(t, toNode(sp), OK, 'reply of the established flow survives the deny');
        expectRun(t, fromNode(sp), OK, 'established flow survives the deny');
        t.is(k.conntrack().find((e) => e.key.sport === sp)!.val.revision, 2, 'entry refreshed to the new revision');
        t.is(k.reasonStats(NfReason.REVISION_DENY).packets, cut, 'nothing cut');
        expectRun(t, fromNode(sp + 1), SHOT, 'a new connection is denied');
      } else {
        expectRun(t, toNode(sp), SHOT, 'reply of the established flow cut');
        t.is(k.reasonStats(NfReason.REVISION_DENY).packets, cut + 1n);
        t.falsy(
          k.conntrack().find((e) => e.key.sport === sp),
          'entry removed',
        );
        expectRun(t, fromNode(sp), SHOT, 'the flow is now a new, denied one');
      }
    }
  },
);

test.serial('host endpoint: node traffic is policed, forwarded traffic passes', (t) => {
  k.endpoint(HOOK_IF, { id: 1, ingressTable: 6, egressTable: 7, flags: NfEpFlag.HOST, revision: 1 });
  k.local('192.168.1.10', 0, NfLocalKind.NODE);
  k.local('fd10::10', 0, NfLocalKind.NODE);
  k.table(6, [
    { action: 'allow', tier: 'admin', peers: [{ cidr: '192.168.1.0/24' }], ports: [{ proto: IPPROTO.TCP, port: 22 }] },
    DENY_ALL,
  ]);
  k.table(7, [{ action: 'deny', tier: 'admin', peers: [{ cidr: '203.0.113.0/24' }] }]);
  const toNode = (src: string, dport: number) =>
    k.run('ingress', packet({ src, dst: '192.168.1.10', l4: l4('tcp', dport) })).verdict;
  expectRun(t, toNode('192.168.1.20', 22), OK, 'ssh from the LAN');
  expectRun(t, toNode('192.168.1.20', 23), SHOT, 'telnet from the LAN');
  expectRun(t, toNode('198.51.100.1', 22), SHOT, 'ssh from elsewhere');
  expectRun(
    t,
    k.run('ingress', packet({ src: 'fd10::20', dst: 'fd10::10', l4: l4('udp', 1) })).verdict,
    SHOT,
    'v6 to the node',
  );
  expectRun(
    t,
    k.run('ingress', packet({ src: '198.51.100.1', dst: '10.244.1.5', l4: l4('tcp', 23) })).verdict,
    OK,
    'forwarded to a pod',
  );
  expectRun(
    t,
    k.run('ingress', truncate(packet({ src: '1.1.1.1', dst: '10.244.1.5', l4: l4('tcp', 1) }), 14 + 20 + 8)).verdict,
    OK,
    'malformed forwarded',
  );
  expectRun(
    t,
    k.run('ingress', truncate(packet({ src: '1.1.1.1', dst: '192.168.1.10', l4: l4('tcp', 1) }), 14 + 20 + 8)).verdict,
    SHOT,
    'malformed to the node',
  );
  const fromNode = (src: string, dst: string, sp = nextPort()) =>
    k.run('egress', packet({ src, dst, l4: { proto: 'tcp', sport: sp, dport: 443 } })).verdict;
  expectRun(t, fromNode('192.168.1.10', '203.0.113.5'), SHOT, 'node to a denied network');
  expectRun(t, fromNode('192.168.1.10', '198.51.100.5', 33333), OK, 'node elsewhere');
  expectRun(t, fromNode('10.244.1.5', '203.0.113.5'), OK, 'forwarded pod traffic is not node egress');
  // replies to node-initiated connections come back through ingress (whose table denies them)
  const reply = (dport: number) =>
    packet({ src: '198.51.100.5', dst: '192.168.1.10', l4: { proto: 'tcp', sport: 443, dport, flags: TCP_ACK } });
  expectRun(t, k.run('ingress', reply(33333)).verdict, OK, 'reply to the node');
  expectRun(t, k.run('ingress', reply(33334)).verdict, SHOT, 'not a reply');
});

// ---- services: deferred egress check after DNAT ---------------------------------

test.serial('service traffic: egress deferred at the client, enforced after DNAT', (t) => {
  const A = '10.244.1.10'; // client pod (ifindex 77 when not under test)
  const B = '10.244.1.20'; // backend denied by A's egress
  const C = '10.244.1.30'; // backend allowed by A's egress
  const R = '10.244.2.40'; // remote backend, allowed
  const S = '10.244.2.50'; // remote backend, denied
  const SVC = '10.96.0.10';
  k.svcCidr('10.96.0.0/12');
  k.local(A, 77, NfLocalKind.POD);
  k.local(B, 78, NfLocalKind.POD);
  k.local(C, 79, NfLocalKind.POD);
  k.table(7, [
    {
      action: 'allow',
      tier: 'netpol',
      peers: [{ cidr: `${C}/32` }, { cidr: `${R}/32` }],
      ports: [{ proto: IPPROTO.TCP, port: 8080 }],
    },
    DENY_ALL,
  ]);
  k.table(6, [DENY_ALL]);
  const epA = pod({ id: 100, egressTable: 7, ingressTable: 6 });
  const epB = pod({ id: 101 });
  const epC = pod({ id: 102, ingressTable: 8 });
  k.table(8, [{ action: 'allow', tier: 'netpol', peers: [{ cidr: '10.244.0.0/16' }] }, DENY_ALL]);
  k.endpoint(77, epA);

  // 1. at A's veth: the service address is not evaluated (A's table would deny it)
  k.endpoint(HOOK_IF, epA);
  const toSvc = (sp: number) => packet({ src: A, dst: SVC, l4: { proto: 'tcp', sport: sp, dport: 80 } });
  expectRun(t, fromPod(toSvc(1001)), OK, 'to the service: deferred');
  expectRun(t, fromPod(toSvc(1002)), OK, 'second connection: deferred');
  const deferred = k.conntrack().filter((e) => e.val.flags & NfCtFlag.DEFERRED);
  t.is(deferred.length, 2);
  t.like(deferred[0].key, { epId: 100, dir: NfDir.EGRESS, saddr: A, daddr: SVC, dport: 80 });
  expectRun(t, fromPod(packet({ src: A, dst: '10.97.0.1', l4: l4('udp', 53) })), OK, 'anywhere in the service CIDR');
  expectRun(t, fromPod(packet({ src: A, dst: B, l4: l4('tcp', 8080) })), SHOT, 'B directly: evaluated at once');

  // 2. after DNAT toward local backends: their veth's tc egress
  const dnat = (dst: string, sp: number) => packet({ src: A, dst, l4: { proto: 'tcp', sport: sp, dport: 8080 } });
  k.endpoint(HOOK_IF, epB);
  expectRun(t, toPod(dnat(B, 1001)), SHOT, "backend B denied by A's egress");
  t.is(k.reasonStats(NfReason.ISOLATED).packets, 2n);
  k.endpoint(HOOK_IF, epC);
  expectRun(t, toPod(dnat(C, 1002)), OK, "backend C allowed by A's egress and C's ingress");
  t.truthy(
    k.conntrack().find((e) => e.key.epId === 100 && e.key.daddr === C && !(e.val.flags & NfCtFlag.DEFERRED)),
    "A's entry for the backend",
  );
  t.truthy(
    k.conntrack().find((e) => e.key.epId === 102 && e.key.dir === NfDir.INGRESS),
    "C's own entry",
  );
  expectRun(t, toPod(dnat(C, 1002)), OK, 'established for both');

  // 3. the de-DNATed reply (source = service) reaches A although A's ingress denies all
  k.endpoint(HOOK_IF, epA);
  expectRun(
    t,
    toPod(packet({ src: SVC, dst: A, l4: { proto: 'tcp', sport: 80, dport: 1002, flags: TCP_ACK } })),
    OK,
    'service reply',
  );
  expectRun(
    t,
    toPod(packet({ src: SVC, dst: A, l4: { proto: 'tcp', sport: 80, dport: 1003, flags: TCP_ACK } })),
    SHOT,
    'unsolicited from the service',
  );

  // 4. remote backends: checked at the uplink's tc egress
  k.endpoint(HOOK_IF, { id: 1, ingressTable: 0, egressTable: 0, flags: NfEpFlag.HOST, revision: 1 });
  expectRun(t, k.run('egress', dnat(R, 1001)).verdict, OK, 'remote backend R allowed');
  expectRun(t, k.run('egress', dnat(S, 1002)).verdict, SHOT, 'remote backend S denied');
  expectRun(
    t,
    k.run('egress', packet({ src: '10.244.9.9', dst: S, l4: l4('tcp', 8080) })).verdict,
    OK,
    'unknown source: not ours',
  );
  expectRun(t, k.run('ingress', dnat(S, 1002)).verdict, OK, 'uplink ingress does not check sources');

  // a pod without tables never creates entries and never blocks its backends
  k.endpoint(77, pod({ id: 100 }));
  k.endpoint(HOOK_IF, epB);
  expectRun(t, toPod(dnat(B, 1004)), OK, 'A without policy reaches B');
});

test.serial(
  'service CIDRs are looked up only with NF_EP_F_SVC_CIDRS (the compiler sets it while the node has some)',
  (t) => {
    k.svcCidr('10.96.0.0/12');
    k.table(7, [DENY_ALL]);
    const f = packet({ src: '10.244.1.10', dst: '10.96.0.10', l4: l4('tcp', 80) });
    k.endpoint(HOOK_IF, pod({ id: 100, egressTable: 7 }));
    expectRun(t, fromPod(f), OK, 'with the flag: deferred');
    k.endpoint(HOOK_IF, pod({ id: 100, egressTable: 7 }), NfEpFlag.SRC_CHECK);
    expectRun(
      t,
      fromPod(packet({ src: '10.244.1.10', dst: '10.96.0.10', l4: l4('tcp', 81) })),
      SHOT,
      'without: evaluated at once',
    );
  },
);

test.serial(
  'a policy-free pod passes right after the endpoint lookup unless a deferred source check may be due (NF_EP_F_SRC_CHECK)',
  (t) => {
    const { ALLOWED } = NfEpVerdict;
    const A = '10.244.1.10';
    const B = '10.244.1.20';
    k.local(A, 77, NfLocalKind.POD);
    k.table(7, [DENY_ALL]);
    k.endpoint(77, pod({ id: 100, egressTable: 7 }));
    const f = packet({ src: A, dst: B, l4: l4('tcp', 8080) });
    k.endpoint(HOOK_IF, pod({ id: 101 }));
    expectRun(t, toPod(f), SHOT, "with the flag: A's egress checked at B");
    // the compiler sets the flag while any local pod has an egress table: this state
    // only shows that without it the hook does not look at the packet
    k.endpoint(HOOK_IF, pod({ id: 101 }), 0);
    expectRun(t, toPod(f), OK, 'without it: no source check');
    t.is(k.epStats(101, NfDir.INGRESS, ALLOWED).packets, 1n, 'still counted');
    expectRun(t, fromPod(packet({ src: B, dst: A, l4: l4('tcp', 80) })), OK, 'tc ingress');
    t.is(k.epStats(101, NfDir.EGRESS, ALLOWED).packets, 1n);
    fromPod(arpFrame());
    t.is(k.epStats(101, NfDir.EGRESS, ALLOWED).packets, 1n, 'ARP is not counted');
    t.is(k.conntrack().length, 0, 'no entries');
    // with tables of its own the hook parses and enforces them, the flag still decides the check
    k.table(8, [{ action: 'allow', tier: 'netpol', peers: [{ cidr: '10.244.0.0/16' }] }, DENY_ALL]);
    k.endpoint(HOOK_IF, pod({ id: 101, ingressTable: 8 }), 0);
    expectRun(t, toPod(f), OK, 'own table allows, no source check');
    k.endpoint(HOOK_IF, pod({ id: 101, ingressTable: 8 }));
    expectRun(t, toPod(packet({ src: A, dst: B, l4: l4('tcp', 8081) })), SHOT, 'with the flag: checked');
  },
);

// ---- drop events ----------------------------------------------------------------

test.serial('drop events carry the verdict and the packet; the rate limit caps them', async (t) => {
  k.watchEvents();
  k.config({ eventsPerSec: 3 });
  k.endpoint(HOOK_IF, pod({ id: 55, egressTable: 5 }));
  k.table(5, [
    {
      action: 'deny',
      tier: 'admin',
      peers: [{ cidr: '10.2.0.0/16' }],
      ports: [{ proto: IPPROTO.UDP, port: 53 }],
      policyId: 9,
      ruleId: 4,
    },
  ]);
  expectRun(
    t,
    fromPod(packet({ src: V4.src, dst: '10.2.0.9', l4: { proto: 'udp', sport: 1234, dport: 53 } })),
    SHOT,
    'denied',
  );
  // the rest of the burst right away: all in one rate-limit window
  for (let i = 0; i < 10; i++) fromPod(packet({ src: V4.src, dst: '10.2.0.9', l4: l4('udp', 53) }));
  const burst = await k.takeEvents(11, 500);
  t.is(burst.length, 3, 'three per second per endpoint');
  t.is(k.reasonStats(NfReason.POLICY_DENY).packets, 11n, 'every drop is counted');
  const e = burst[0];
  t.like(e, {
    epId: 55,
    ifindex: HOOK_IF,
    table: 5,
    policyId: 9,
    ruleId: 4,
    ruleIndex: 0,
    dir: NfDir.EGRESS,
    proto: IPPROTO.UDP,
    reason: NfReason.POLICY_DENY,
    action: 2,
    sport: 1234,
    dport: 53,
    saddr: V4.src,
    daddr: '10.2.0.9',
  });
  t.true(e.tsNs > 0n);

  k.endpoint(HOOK_IF, pod({ id: 56, egressTable: 5 }));
  for (let i = 0; i < 5; i++) fromPod(packet({ src: V4.src, dst: '10.2.0.9', l4: l4('udp', 53) }));
  const other = await k.takeEvents(5, 300);
  t.is(other.length, 3, 'another endpoint has its own budget');
  t.true(other.every((x) => x.epId === 56));

  k.config({ eventsPerSec: 0 });
  k.endpoint(HOOK_IF, pod({ id: 57, egressTable: 5 }));
  fromPod(packet({ src: V4.src, dst: '10.2.0.9', l4: l4('udp', 53) }));
  t.is((await k.takeEvents(1, 200)).length, 0, 'events_per_sec 0: none');

  k.config({ eventsPerSec: 100 });
  k.endpoint(HOOK_IF, pod({ id: 58, egressTable: 5, ingressTable: 5 }));
  fromPod(patchByte(packet({ src: V6.src, dst: V6.outside, l4: l4('tcp', 1) }), 14 + 40 + 12, 0x40)); // data offset 4
  const [m] = await k.takeEvents(1);
  t.like(m, {
    epId: 58,
    reason: NfReason.MALFORMED,
    ruleIndex: 0xffff,
    proto: IPPROTO.TCP,
    saddr: V6.src,
    daddr: V6.outside,
  });
});

// ---- transparent tunnel ---------------------------------------------------------

test.serial('tunnel: mark only with the flag, only toward other local tunnel-mode pods, never to services', (t) => {
  const A = '10.244.1.10';
  const B = '10.244.1.20';
  k.svcCidr('10.96.0.0/12');
  k.local(A, HOOK_IF, NfLocalKind.POD);
  k.local(B, 78, NfLocalKind.POD);
  k.local('fd00:244::20', 78, NfLocalKind.POD);
  k.endpoint(HOOK_IF, pod({ flags: NfEpFlag.POD | NfEpFlag.TUNNEL }));
  k.endpoint(78, pod({ id: 78, flags: NfEpFlag.POD | NfEpFlag.TUNNEL }));
  const to = (dst: string, mark = 0) =>
    k.run('ingress', packet({ src: dst.includes(':') ? 'fd00:244::10' : A, dst, l4: l4('tcp', 80) }), { mark });

  t.deepEqual(to(B), { verdict: OK, mark: 0 }, 'flag unset: no mark');
  k.config({ flags: NfCfgFlag.TUNNEL_FWMARK, tunnelMark: 0x100, tunnelMarkMask: 0xf00 });
  t.deepEqual(to(B), { verdict: OK, mark: 0x100 }, 'marked');
  t.deepEqual(to(B, 0x12345a5a), { verdict: OK, mark: 0x1234515a }, 'mark bits replaced under the mask only');
  t.deepEqual(to('fd00:244::20'), { verdict: OK, mark: 0x100 }, 'v6 marked');
  t.deepEqual(to('10.96.0.10'), { verdict: OK, mark: 0 }, 'service: never');
  t.deepEqual(to('10.244.2.1'), { verdict: OK, mark: 0 }, 'not a local pod');
  t.deepEqual(to(A), { verdict: OK, mark: 0 }, 'itself');
  k.endpoint(78, pod({ id: 78 }));
  t.deepEqual(
    to(B),
    { verdict: OK, mark: 0 },
    'destination not in tunnel mode (a bridge port): its replies would not come back that way',
  );
  k.endpoint(78, pod({ id: 78, flags: NfEpFlag.POD | NfEpFlag.TUNNEL }));
  k.endpoint(HOOK_IF, pod());
  t.deepEqual(to(B), { verdict: OK, mark: 0 }, 'endpoint not in tunnel mode');

  k.endpoint(HOOK_IF, pod({ flags: NfEpFlag.POD | NfEpFlag.TUNNEL, egressTable: 5 }));
  k.table(5, [{ action: 'deny', tier: 'netpol', peers: [{ cidr: `${B}/32` }] }]);
  t.is(to(B).verdict, SHOT, 'denied packets are dropped, not tunnelled');
  k.table(5, [{ action: 'allow', tier: 'netpol', peers: ANY }]);
  k.config({ flags: NfCfgFlag.TUNNEL_DIRECT, uplinkIfindex: HOOK_IF, gateway4: '192.168.1.1', gateway6: 'fd10::1' });
  t.is(to(B).verdict, TC_ACT_REDIRECT, 'direct mode redirects v4');
  t.is(to('fd00:244::20').verdict, TC_ACT_REDIRECT, 'direct mode redirects v6');
  t.is(to('10.96.0.10').verdict, OK, 'direct mode: service not redirected');
  k.config({ flags: NfCfgFlag.TUNNEL_DIRECT, uplinkIfindex: HOOK_IF });
  t.is(to(B).verdict, TC_ACT_REDIRECT, 'no gateway: FIB next hop');
  // traffic to the pod is never tunnelled
  t.is(k.run('egress', packet({ src: B, dst: A, l4: l4('tcp', 80) })).verdict, OK);
});

test.serial('tunnel: a family switched off (its gateway silent) flows directly, the other stays tunnelled', (t) => {
  const A = '10.244.1.10';
  const B = '10.244.1.20';
  const A6 = 'fd00:244::10';
  const B6 = 'fd00:244::20';
  for (const ip of [A, A6]) k.local(ip, HOOK_IF, NfLocalKind.POD);
  for (const ip of [B, B6]) k.local(ip, 78, NfLocalKind.POD);
  k.endpoint(HOOK_IF, pod({ flags: NfEpFlag.POD | NfEpFlag.TUNNEL }));
  k.endpoint(78, pod({ id: 78, flags: NfEpFlag.POD | NfEpFlag.TUNNEL }));
  const to = (dst: string) => k.run('ingress', packet({ src: dst.includes(':') ? A6 : A, dst, l4: l4('tcp', 80) }));
  const FWMARK = { flags: NfCfgFlag.TUNNEL_FWMARK, tunnelMark: 0x100, tunnelMarkMask: 0xf00 };
  const DIRECT = {
    flags: NfCfgFlag.TUNNEL_DIRECT,
    uplinkIfindex: HOOK_IF,
    gateway4: '192.168.1.1',
    gateway6: 'fd10::1',
  };

  k.config({ ...FWMARK, flags: FWMARK.flags | NfCfgFlag.TUNNEL_OFF6 });
  t.deepEqual(to(B6), { verdict: OK, mark: 0 }, 'fwmark, v6 off: v6 not marked');
  t.deepEqual(to(B), { verdict: OK, mark: 0x100 }, 'fwmark, v6 off: v4 still marked');
  k.config({ ...FWMARK, flags: FWMARK.flags | NfCfgFlag.TUNNEL_OFF4 });
  t.deepEqual(to(B), { verdict: OK, mark: 0 }, 'fwmark, v4 off: v4 not marked');
  t.deepEqual(to(B6), { verdict: OK, mark: 0x100 }, 'fwmark, v4 off: v6 still marked');

  k.config({ ...DIRECT, flags: DIRECT.flags | NfCfgFlag.TUNNEL_OFF6 });
  t.is(to(B6).verdict, OK, 'direct, v6 off: v6 not redirected');
  t.is(to(B).verdict, TC_ACT_REDIRECT, 'direct, v6 off: v4 still redirected');
  k.config({ ...DIRECT, flags: DIRECT.flags | NfCfgFlag.TUNNEL_OFF4 });
  t.is(to(B).verdict, OK, 'direct, v4 off: v4 not redirected');
  t.is(to(B6).verdict, TC_ACT_REDIRECT, 'direct, v4 off: v6 still redirected');
  k.config({ ...DIRECT, flags: DIRECT.flags | NfCfgFlag.TUNNEL_OFF4 | NfCfgFlag.TUNNEL_OFF6 });
  t.is(to(B).verdict, OK, 'both off: v4 direct');
  t.is(to(B6).verdict, OK, 'both off: v6 direct');
  k.config(DIRECT);
  t.is(to(B6).verdict, TC_ACT_REDIRECT, 'v6 back on: redirected again');

  // a flow that arrived straight from the source pod while its family was off is not
  // remembered as untunnelled: once the family is back on, its replies are tunnelled
  k.config({ ...DIRECT, flags: DIRECT.flags | NfCfgFlag.TUNNEL_OFF6 });
  const request6 = k.run('egress', packet({ src: B6, dst: A6, l4: { proto: 'udp', sport: 2000, dport: 53 } }), {
    ingressIfindex: 78,
  });
  t.is(request6.verdict, OK, 'v6 request straight from the other pod, v6 off');
  t.is(k.conntrack().filter((e) => e.val.flags & NfCtFlag.NO_TUNNEL).length, 0, 'v6 off: not flagged');
  const request4 = k.run('egress', packet({ src: B, dst: A, l4: { proto: 'udp', sport: 2001, dport: 53 } }), {
    ingressIfindex: 78,
  });
  t.is(request4.verdict, OK, 'v4 request straight from the other pod, v4 on');
  t.is(k.conntrack().filter((e) => e.val.flags & NfCtFlag.NO_TUNNEL).length, 1, 'v4 on: flagged');
});

test.serial('tunnel: replies of flows that came untunnelled (DNAT to a same-node backend) are not tunnelled', (t) => {
  const A = '10.244.1.10'; // client pod, host interface 77
  const B = '10.244.1.20'; // backend under test
  const A6 = 'fd00:244::10';
  const B6 = 'fd00:244::20';
  const A_IF = 77;
  const UPLINK = 2;
  k.svcCidr('10.96.0.0/12');
  for (const ip of [A, A6]) k.local(ip, A_IF, NfLocalKind.POD);
  for (const ip of [B, B6]) k.local(ip, HOOK_IF, NfLocalKind.POD);
  k.endpoint(A_IF, pod({ id: 100, flags: NfEpFlag.POD | NfEpFlag.TUNNEL }));
  const TUNNEL_POD = NfEpFlag.POD | NfEpFlag.TUNNEL;
  k.endpoint(HOOK_IF, pod({ id: 101, flags: TUNNEL_POD }));
  // after DNAT: A -> B:53 arrives at B's tc egress, from A's interface (untunnelled) or the uplink (tunnelled)
  const request = (sp: number, via: number, src = A, dst = B) =>
    k.run('egress', packet({ src, dst, l4: { proto: 'udp', sport: sp, dport: 53 } }), { ingressIfindex: via }).verdict;
  const reply = (sp: number, src = B, dst = A) =>
    k.run('ingress', packet({ src, dst, l4: { proto: 'udp', sport: 53, dport: sp } }));
  const flagged = () => k.conntrack().filter((e) => e.val.flags & NfCtFlag.NO_TUNNEL);

  expectRun(t, request(1000, A_IF), OK, 'tunnel off');
  t.is(k.conntrack().length, 0, 'tunnel off: a tableless endpoint remembers nothing');

  k.config({ flags: NfCfgFlag.TUNNEL_DIRECT, uplinkIfindex: HOOK_IF, gateway4: '192.168.1.1', gateway6: 'fd10::1' });
  expectRun(t, request(1001, A_IF), OK, 'DNATed request, straight from A');
  t.is(flagged().length, 1);
  t.like(flagged()[0].key, {
    epId: 101,
    dir: NfDir.INGRESS,
    proto: IPPROTO.UDP,
    saddr: A,
    daddr: B,
    sport: 1001,
    dport: 53,
  });
  expectRun(t, reply(1001).verdict, OK, 'its reply goes back through the node (de-DNAT), not the tunnel');
  expectRun(t, request(1002, UPLINK), OK, 'request that came through the tunnel');
  t.is(flagged().length, 1, 'not flagged');
  expectRun(t, reply(1002).verdict, TC_ACT_REDIRECT, 'its reply is tunnelled');
  expectRun(t, reply(1003).verdict, TC_ACT_REDIRECT, 'B-initiated traffic to A is tunnelled');
  expectRun(t, request(1004, A_IF, A6, B6), OK, 'v6 request straight from A');
  expectRun(t, reply(1004, B6, A6).verdict, OK, 'v6 reply not tunnelled');
  expectRun(t, request(1005, 33), OK, "from another interface than the source pod's");
  expectRun(t, reply(1005).verdict, TC_ACT_REDIRECT, 'not proof of an untunnelled flow: tunnelled');

  k.config({ flags: NfCfgFlag.TUNNEL_FWMARK, tunnelMark: 0x100, tunnelMarkMask: 0xf00 });
  t.deepEqual(reply(1001), { verdict: OK, mark: 0 }, 'fwmark mode: reply not marked');
  t.deepEqual(reply(1002), { verdict: OK, mark: 0x100 }, "fwmark mode: tunnelled flow's reply marked");

  // with policy: the policy's own entry carries the flag, and keeps it across a revision bump
  k.table(6, [{ action: 'allow', tier: 'netpol', peers: [{ cidr: '10.244.0.0/16' }] }, DENY_ALL]);
  k.endpoint(HOOK_IF, pod({ id: 101, flags: TUNNEL_POD, ingressTable: 6, egressTable: 6 }));
  expectRun(t, request(1006, UPLINK), OK, 'tunnelled request allowed by policy');
  t.is(k.conntrack().find((e) => e.key.sport === 1006)!.val.flags & NfCtFlag.NO_TUNNEL, 0);
  expectRun(t, request(1007, A_IF), OK, 'untunnelled request allowed by policy');
  t.like(k.conntrack().find((e) => e.key.sport === 1007)!.val, { flags: NfCtFlag.NO_TUNNEL, rule: 0 });
  k.endpoint(HOOK_IF, pod({ id: 101, flags: TUNNEL_POD, ingressTable: 6, egressTable: 6, revision: 2 }));
  t.deepEqual(reply(1007), { verdict: OK, mark: 0 }, 'reply after a revision bump: re-evaluated, still untunnelled');
  t.like(k.conntrack().find((e) => e.key.sport === 1007)!.val, {
    revision: 2,
    flags: NfCtFlag.NO_TUNNEL | NfCtFlag.SEEN_REPLY,
  });
  t.deepEqual(reply(1006), { verdict: OK, mark: 0x100 }, "tunnelled flow's reply still marked");
  expectRun(t, request(1008, A_IF, A6, B6), SHOT, 'denied requests (A6 is outside the allowed CIDR) flag nothing');

  // the flag is only for tunnel-mode backends with the tunnel on
  k.endpoint(HOOK_IF, pod({ id: 102 }));
  expectRun(t, request(1009, A_IF), OK, 'backend not in tunnel mode');
  k.endpoint(HOOK_IF, pod({ id: 103, flags: TUNNEL_POD }));
  k.config({});
  expectRun(t, request(1010, A_IF), OK, 'tunnel off');
  t.deepEqual(
    flagged()
      .map((e) => e.key.sport)
      .sort(),
    [1001, 1004, 1007],
  );
});
