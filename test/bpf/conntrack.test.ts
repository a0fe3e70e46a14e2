// Conntrack beyond established flows, under BPF_PROG_TEST_RUN: ICMP errors related
// to a tracked flow (PMTU discovery through isolated pods) and TCP close (a closing
// entry's timeout, a reused 4-tuple meeting the current policy). One unpinned object
// for the file; every test starts from empty maps; the endpoint under test is keyed
// at ifindex 1, where the test runs put the skb.
import test, { type ExecutionContext } from 'ava';
import { isIP } from 'node:net';
import { IPPROTO, NF_CT_CLOSE_TIMEOUT_NS, NfCtFlag, NfDir, NfEpFlag, NfEpVerdict, NfReason } from '../../src/wire/abi';
import { Classifier, TC_ACT_OK, TC_ACT_SHOT, type TestEndpoint, type TestRule } from './harness';
import { buildObjects } from './objects';
import { l3Offset, packet, TCP_ACK, TCP_SYN, type L4, type PacketSpec } from './packets';

const TCP_FIN = 0x01;
const TCP_RST = 0x04;

/** ICMP error types the classifier treats as related to the flow they quote. */
const ICMP_ERR = {
  v4: { fragNeeded: { type: 3, code: 4 }, portUnreach: { type: 3, code: 3 }, timeExceeded: { type: 11, code: 0 } },
  v6: { packetTooBig: { type: 2, code: 0 }, portUnreach: { type: 1, code: 4 }, timeExceeded: { type: 3, code: 0 } },
} as const;

/**
 * An ICMP / ICMPv6 error from `src` to `dst` quoting the packet `about`: IPv4 quotes
 * its IP header and first 8 L4 bytes (RFC 792), IPv6 the whole packet (RFC 4443);
 * `quote` cuts the quote to that many bytes. `mtu` fills the next-hop MTU field.
 */
function icmpError(
  src: string,
  dst: string,
  kind: { type: number; code: number },
  about: PacketSpec,
  opts: { mtu?: number; quote?: number } = {},
): Buffer {
  const inner = packet(about).subarray(l3Offset(about));
  const v4 = isIP(src) === 4;
  const quoteLen = opts.quote ?? (v4 ? (inner[0] & 0x0f) * 4 + 8 : inner.length);
  const l4: L4 = v4
    ? { proto: 'icmp', type: kind.type, code: kind.code, seq: opts.mtu ?? 0 }
    : { proto: 'icmpv6', type: kind.type, code: kind.code, seq: opts.mtu ?? 0 };
  return packet({ src, dst, l4, payload: Buffer.from(inner.subarray(0, quoteLen)) });
}

buildObjects();
const k = new Classifier();
test.after.always(() => k.close());
test.beforeEach(() => k.reset());

const HOOK_IF = 1;
const OK = TC_ACT_OK;
const SHOT = TC_ACT_SHOT;
const ANY: TestRule['peers'] = [{ cidr: '0.0.0.0/0' }, { cidr: '::/0' }];
const DENY_ALL: TestRule = { action: 'deny', tier: 'netpol', peers: ANY };

const FAMILIES = {
  v4: {
    pod: '10.1.0.1',
    server: '10.9.0.5',
    router: '10.1.0.254',
    err: ICMP_ERR.v4.fragNeeded,
    portUnreach: ICMP_ERR.v4.portUnreach,
    timeExceeded: ICMP_ERR.v4.timeExceeded,
    echo: 8,
  },
  v6: {
    pod: 'fd00:1::1',
    server: 'fd00:9::5',
    router: 'fd00:1::fe',
    err: ICMP_ERR.v6.packetTooBig,
    portUnreach: ICMP_ERR.v6.portUnreach,
    timeExceeded: ICMP_ERR.v6.timeExceeded,
    echo: 128,
  },
} as const;

function pod(over: Partial<TestEndpoint> = {}): TestEndpoint {
  return { id: 10, ingressTable: 0, egressTable: 0, flags: NfEpFlag.POD, revision: 1, ...over };
}

/** From the pod under test (tc ingress hook) and to it (tc egress hook). */
const fromPod = (frame: Buffer) => k.run('ingress', frame).verdict;
const toPod = (frame: Buffer) => k.run('egress', frame).verdict;

function expectRun(t: ExecutionContext, got: number, want: number, label: string): void {
  const name = (v: number) => (v === OK ? 'OK' : v === SHOT ? 'SHOT' : String(v));
  t.is(name(got), name(want), label);
}

const related = () => k.reasonStats(NfReason.RELATED).packets;

// The pod may open TCP 443 to the server and take DNS on UDP 53; ICMP is allowed in neither
// direction, so only related errors reach it or leave it.
const EGRESS: TestRule[] = [
  {
    action: 'allow',
    tier: 'netpol',
    peers: [{ cidr: '10.9.0.0/16' }, { cidr: 'fd00:9::/64' }],
    ports: [{ proto: IPPROTO.TCP, port: 443 }],
  },
  DENY_ALL,
];
const INGRESS: TestRule[] = [
  { action: 'allow', tier: 'netpol', peers: ANY, ports: [{ proto: IPPROTO.UDP, port: 53 }] },
  DENY_ALL,
];

function isolatedPod(revision = 1): void {
  k.table(6, INGRESS);
  k.table(7, EGRESS);
  k.endpoint(HOOK_IF, pod({ ingressTable: 6, egressTable: 7, revision }));
}

for (const [fam, a] of Object.entries(FAMILIES)) {
  test.serial(
    `related ${fam}: fragmentation needed / packet too big for an allowed flow passes an isolated pod; for an untracked one it is denied`,
    (t) => {
      isolatedPod();
      const syn: PacketSpec = {
        src: a.pod,
        dst: a.server,
        l4: { proto: 'tcp', sport: 40000, dport: 443, flags: TCP_SYN },
      };
      const other: PacketSpec = { ...syn, l4: { proto: 'tcp', sport: 40001, dport: 443, flags: TCP_SYN } };
      const pmtu = (about: PacketSpec, opts: { quote?: number } = {}) =>
        icmpError(a.router, a.pod, a.err, about, { mtu: 1400, ...opts });

      expectRun(t, toPod(pmtu(syn)), SHOT, 'before the flow exists: an ICMP packet the ingress table denies');
      t.is(k.reasonStats(NfReason.ISOLATED).packets, 1n);
      expectRun(t, fromPod(packet(syn)), OK, 'SYN allowed');
      expectRun(t, toPod(pmtu(syn)), OK, 'the router tells the pod to lower its MTU');
      t.is(related(), 1n, 'counted as related, not as a policy evaluation');
      t.is(k.ruleStats(6, 1).packets, 1n, 'the isolation deny counted only the packet before the flow');
      t.is(k.epStats(10, NfDir.INGRESS, NfEpVerdict.ALLOWED).packets, 1n, 'an allowed packet of the endpoint');
      expectRun(t, toPod(pmtu(other)), SHOT, 'the same error for a flow conntrack does not know');
      expectRun(
        t,
        toPod(pmtu(syn, { quote: (fam === 'v4' ? 20 : 40) + 4 })),
        SHOT,
        'a quote too short for the ports is no tuple',
      );
      t.is(related(), 1n);
      const [e] = k.conntrack();
      t.is(e.val.flags & NfCtFlag.SEEN_REPLY, 0, 'an error is no reply of the flow');
    },
  );

  test.serial(
    `related ${fam}: errors about inbound flows, echo requests and quotes with extension headers; both hooks`,
    (t) => {
      isolatedPod();
      // an inbound query the pod answers with port unreachable: leaves through the egress table
      const query: PacketSpec = { src: a.server, dst: a.pod, l4: { proto: 'udp', sport: 5353, dport: 53 } };
      expectRun(t, toPod(packet(query)), OK, 'query allowed in');
      expectRun(
        t,
        fromPod(icmpError(a.pod, a.server, a.portUnreach, query)),
        OK,
        'port unreachable about it leaves as related',
      );
      // the pod's reply to it hits a small MTU on the way: the error comes back in
      const answer: PacketSpec = { src: a.pod, dst: a.server, l4: { proto: 'udp', sport: 53, dport: 5353 } };
      expectRun(
        t,
        toPod(icmpError(a.router, a.pod, a.err, answer, { mtu: 1280 })),
        OK,
        'error about the reply direction',
      );

      // a ping the egress table does not allow never gets an entry, so neither do its errors
      const ping: PacketSpec = {
        src: a.pod,
        dst: a.server,
        l4: { proto: fam === 'v4' ? 'icmp' : 'icmpv6', type: a.echo, id: 77 },
      };
      expectRun(t, fromPod(packet(ping)), SHOT, 'ping denied');
      expectRun(
        t,
        toPod(icmpError(a.router, a.pod, a.timeExceeded, ping)),
        SHOT,
        'its time exceeded is no related error',
      );
      t.is(related(), 2n);

      // allow ICMP out: the ping's entry makes its time exceeded related
      k.table(7, [
        {
          action: 'allow',
          tier: 'netpol',
          peers: ANY,
          ports: [{ proto: fam === 'v4' ? IPPROTO.ICMP : IPPROTO.ICMPV6 }],
        },
        ...EGRESS,
      ]);
      expectRun(t, fromPod(packet(ping)), OK, 'ping allowed');
      expectRun(t, toPod(icmpError(a.router, a.pod, a.timeExceeded, ping)), OK, 'time exceeded about the ping');
      t.is(related(), 3n);

      if (fam === 'v6') {
        const withExt: PacketSpec = {
          src: a.pod,
          dst: a.server,
          l4: { proto: 'tcp', sport: 40100, dport: 443 },
          ext: ['hop', 'dest'],
        };
        expectRun(t, fromPod(packet(withExt)), OK, 'SYN with extension headers');
        expectRun(
          t,
          toPod(icmpError(a.router, a.pod, a.err, withExt, { mtu: 1280 })),
          OK,
          "the quote's extension headers are walked",
        );
        t.is(related(), 4n);
      }
    },
  );

  test.serial(`related ${fam}: a revision that denies the flow cuts its errors too`, (t) => {
    isolatedPod(1);
    const syn: PacketSpec = {
      src: a.pod,
      dst: a.server,
      l4: { proto: 'tcp', sport: 40000, dport: 443, flags: TCP_SYN },
    };
    const pmtu = icmpError(a.router, a.pod, a.err, syn, { mtu: 1400 });
    expectRun(t, fromPod(packet(syn)), OK, 'SYN allowed');
    expectRun(t, toPod(pmtu), OK, 'related');

    // revision 2, same rules: the flow is re-evaluated once and stays
    k.table(17, EGRESS);
    k.endpoint(HOOK_IF, pod({ ingressTable: 6, egressTable: 17, revision: 2 }));
    expectRun(t, toPod(pmtu), OK, 'related after a compatible bump');
    t.is(k.conntrack()[0].val.revision, 2, 'the flow moved to the new revision');
    t.is(k.ruleStats(17, 0).packets, 1n, 'the flow (TCP 443), not the ICMP packet, was re-evaluated');

    // revision 3 denies the server
    k.table(27, [
      { action: 'deny', tier: 'admin', peers: [{ cidr: '10.9.0.0/16' }, { cidr: 'fd00:9::/64' }] },
      ...EGRESS,
    ]);
    k.endpoint(HOOK_IF, pod({ ingressTable: 6, egressTable: 27, revision: 3 }));
    expectRun(t, toPod(pmtu), SHOT, 'the related error is cut with its flow');
    t.is(k.reasonStats(NfReason.REVISION_DENY).packets, 1n);
    t.is(k.conntrack().length, 0, 'entry removed');
    expectRun(t, toPod(pmtu), SHOT, 'and stays cut: now an ICMP packet the ingress table denies');
    t.is(related(), 2n);
  });
}

// ---- TCP close ------------------------------------------------------------------

const V4 = FAMILIES.v4;

function tcp(from: 'pod' | 'server', flags: number, sport = 40000): Buffer {
  return from === 'pod'
    ? packet({ src: V4.pod, dst: V4.server, l4: { proto: 'tcp', sport, dport: 443, flags } })
    : packet({ src: V4.server, dst: V4.pod, l4: { proto: 'tcp', sport: 443, dport: sport, flags } });
}

function entry(t: ExecutionContext) {
  const all = k.conntrack();
  t.is(all.length, 1, 'one conntrack entry');
  return all[0];
}

test.serial('TCP close: FIN from both sides starts the close timeout; one FIN does not', async (t) => {
  isolatedPod();
  expectRun(t, fromPod(tcp('pod', TCP_SYN)), OK, 'SYN');
  expectRun(t, toPod(tcp('server', TCP_SYN | TCP_ACK)), OK, 'SYN-ACK');
  expectRun(t, fromPod(tcp('pod', TCP_FIN | TCP_ACK)), OK, 'FIN from the pod');
  t.like(entry(t).val, { flags: NfCtFlag.SEEN_REPLY | NfCtFlag.FIN_FWD, expiresNs: 0n });
  expectRun(t, toPod(tcp('server', TCP_ACK)), OK, 'half-closed: the server still sends');
  t.is(entry(t).val.expiresNs, 0n, 'half-closed is open');
  expectRun(t, toPod(tcp('server', TCP_FIN | TCP_ACK)), OK, 'FIN from the server');
  const e = entry(t);
  t.is(e.val.flags, NfCtFlag.SEEN_REPLY | NfCtFlag.FIN_FWD | NfCtFlag.FIN_REPLY | NfCtFlag.CLOSING);
  t.is(e.val.expiresNs - e.val.lastSeenNs, NF_CT_CLOSE_TIMEOUT_NS, 'lifetime: the close timeout');
  await new Promise((r) => setTimeout(r, 30)); // conntrack time moves in ticks (<= 10 ms)
  expectRun(t, fromPod(tcp('pod', TCP_ACK)), OK, 'the last ACK passes while closing');
  const after = entry(t);
  t.true(after.val.lastSeenNs > e.val.lastSeenNs);
  t.is(after.val.expiresNs - after.val.lastSeenNs, NF_CT_CLOSE_TIMEOUT_NS, 'the deadline follows the last packet');
});

test.serial(
  'an open flow: its packets after the reply leave the entry untouched (no write shared by both ends)',
  async (t) => {
    isolatedPod();
    expectRun(t, fromPod(tcp('pod', TCP_SYN)), OK, 'SYN');
    expectRun(t, toPod(tcp('server', TCP_SYN | TCP_ACK)), OK, 'SYN-ACK');
    const open = entry(t);
    t.like(open.val, { flags: NfCtFlag.SEEN_REPLY, expiresNs: 0n });
    await new Promise((r) => setTimeout(r, 30)); // conntrack time moves in ticks (<= 10 ms)
    expectRun(t, fromPod(tcp('pod', TCP_ACK)), OK, 'ACK');
    expectRun(t, toPod(tcp('server', TCP_ACK)), OK, 'data');
    t.deepEqual(entry(t), open, 'byte for byte');
    expectRun(t, fromPod(tcp('pod', TCP_RST)), OK, 'RST: closing, the clock is read again');
    t.true(entry(t).val.lastSeenNs > open.val.lastSeenNs);
  },
);

test.serial(
  'TCP close: after RST the entry closes; a new SYN on the tuple is evaluated again; past the deadline replies are new packets',
  (t) => {
    isolatedPod();
    expectRun(t, fromPod(tcp('pod', TCP_SYN)), OK, 'SYN');
    expectRun(t, toPod(tcp('server', TCP_RST | TCP_ACK)), OK, 'RST from the server');
    const e = entry(t);
    t.true((e.val.flags & NfCtFlag.CLOSING) !== 0, 'closing');
    t.is(e.val.expiresNs - e.val.lastSeenNs, NF_CT_CLOSE_TIMEOUT_NS, 'lifetime: the close timeout');
    t.is(k.ruleStats(7, 0).packets, 1n);

    expectRun(t, fromPod(tcp('pod', TCP_SYN)), OK, 'the tuple reused');
    t.is(k.ruleStats(7, 0).packets, 2n, 'the new SYN was evaluated against the policy');
    const fresh = entry(t);
    t.like(fresh.val, { flags: 0, expiresNs: 0n }, 'a fresh, open entry');

    // the flow resets again and its deadline passes (moved into the past)
    expectRun(t, fromPod(tcp('pod', TCP_RST)), OK, 'RST from the pod');
    const closing = entry(t);
    k.putConntrack(closing.key, { ...closing.val, expiresNs: 1n });
    expectRun(t, toPod(tcp('server', TCP_ACK)), SHOT, 'a late reply is a new inbound packet the ingress table denies');
    t.is(k.conntrack().length, 0, 'the expired entry was deleted');
  },
);

test.serial(
  'TCP close: a host endpoint keeping established flows across a deny lets a reused tuple meet the deny after RST',
  (t) => {
    const NODE = '192.168.1.10';
    const PEER = '192.168.1.20';
    k.local(NODE, 0, 2 /* NfLocalKind.NODE */);
    k.table(7, [{ action: 'allow', tier: 'admin', peers: ANY }]);
    k.table(17, [DENY_ALL]);
    const host = (over: Partial<TestEndpoint>): TestEndpoint => ({
      id: 1,
      ingressTable: 0,
      egressTable: 7,
      flags: NfEpFlag.HOST | NfEpFlag.KEEP_ESTABLISHED,
      revision: 1,
      ...over,
    });
    const out = (flags: number, sp: number) =>
      k.run('egress', packet({ src: NODE, dst: PEER, l4: { proto: 'tcp', sport: sp, dport: 22, flags } })).verdict;
    const back = (flags: number, sp: number) =>
      k.run('ingress', packet({ src: PEER, dst: NODE, l4: { proto: 'tcp', sport: 22, dport: sp, flags } })).verdict;

    k.endpoint(HOOK_IF, host({}));
    expectRun(t, out(TCP_SYN, 41000), OK, 'connection a');
    expectRun(t, out(TCP_SYN, 41001), OK, 'connection b');
    expectRun(t, back(TCP_RST | TCP_ACK, 41001), OK, 'b is reset');
    k.endpoint(HOOK_IF, host({ revision: 2, ingressTable: 17, egressTable: 17 }));
    expectRun(t, out(TCP_ACK, 41000), OK, 'a, established, survives the deny');
    expectRun(t, out(TCP_SYN, 41000), OK, 'a retransmitted SYN of an open flow stays established');
    expectRun(t, out(TCP_SYN, 41001), SHOT, "b's tuple reused after the RST meets the deny");
    t.is(k.reasonStats(NfReason.ISOLATED).packets, 1n);
    t.is(k.conntrack().length, 1, "b's closing entry went with the denied SYN: a's is left");
  },
);
