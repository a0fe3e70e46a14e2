// Local delivery (NF_EP_F_LOCAL_DELIVERY) through BPF_PROG_TEST_RUN: the source pod's tc
// ingress enforces the destination pod's ingress policy, routes the frame (MACs, TTL)
// and returns TC_ACT_REDIRECT (bpf_redirect_peer); everything it must not take stays
// with the stack (TC_ACT_OK) unchanged.
import test from 'ava';
import { IPPROTO, NfCtFlag, NfDir, NfEpFlag, NfEpVerdict, NfLocalKind, NfReason } from '../../src/wire/abi';
import { decodeMac } from '../../src/wire/local';
import { Classifier, TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT, type TestEndpoint, type TestRule } from './harness';
import { buildObjects } from './objects';
import { packet, type PacketSpec } from './packets';

buildObjects();
const k = new Classifier();
test.after.always(() => k.close());
test.beforeEach(() => k.reset());

const A_IF = 1; // the hook's interface (loopback in a test run): the source pod's host veth
const B_IF = 78;
const A = { v4: '10.244.1.10', v6: 'fd00:244::10' };
const B = { v4: '10.244.1.20', v6: 'fd00:244::20' };
const B_MACS = { podMac: '02:00:00:00:0b:01', hostMac: '02:00:00:00:0b:02' };
const LOCAL = NfEpFlag.POD | NfEpFlag.LOCAL_DELIVERY;
const ANY: TestRule['peers'] = [{ cidr: '0.0.0.0/0' }, { cidr: '::/0' }];

function pod(id: number, over: Partial<TestEndpoint> = {}): TestEndpoint {
  return { id, ingressTable: 0, egressTable: 0, flags: LOCAL, revision: 1, ...over };
}

/** Pods A (under the hook) and B, both local-delivery veths; B isolated for ingress by
 *  table 7: TCP 80 allowed, the rest denied (isolation). */
function setup(): void {
  for (const ip of Object.values(A))
    k.local(ip, A_IF, NfLocalKind.POD, { podMac: '02:00:00:00:0a:01', hostMac: '02:00:00:00:0a:02' });
  for (const ip of Object.values(B)) k.local(ip, B_IF, NfLocalKind.POD, B_MACS);
  k.svcCidr('10.96.0.0/12');
  k.endpoint(A_IF, pod(100), NfEpFlag.SVC_CIDRS);
  k.endpoint(B_IF, pod(200, { ingressTable: 7 }), NfEpFlag.SVC_CIDRS);
  k.table(7, [
    { action: 'allow', tier: 'netpol', peers: ANY, ports: [{ proto: IPPROTO.TCP, port: 80 }] },
    { action: 'deny', tier: 'netpol', peers: ANY },
  ]);
}

/** A frame addressed to the node (loopback's all-zero MAC: PACKET_HOST). */
function toNode(spec: PacketSpec): Buffer {
  const f = packet(spec);
  f.fill(0, 0, 6);
  return f;
}

function ipv4ChecksumOk(frame: Buffer): boolean {
  let sum = 0;
  for (let i = 14; i < 34; i += 2) sum += frame.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  return sum === 0xffff;
}

let port = 30000;
const tcp = (dport: number) => ({ proto: 'tcp' as const, sport: ++port, dport });

test.serial(
  "allowed by both pods: routed (MACs, TTL, checksum) and redirected, the destination's flow tracked",
  (t) => {
    setup();
    for (const fam of ['v4', 'v6'] as const) {
      const l4 = tcp(80);
      const r = k.runFrame('ingress', toNode({ src: A[fam], dst: B[fam], l4 }));
      t.is(r.verdict, TC_ACT_REDIRECT, `${fam}: redirected`);
      t.is(decodeMac(r.frame, 0), B_MACS.podMac, `${fam}: to the pod's MAC`);
      t.is(decodeMac(r.frame, 6), B_MACS.hostMac, `${fam}: from its host veth`);
      if (fam === 'v4') {
        t.is(r.frame[14 + 8], 63, 'TTL - 1');
        t.true(ipv4ChecksumOk(r.frame), 'header checksum still right');
      } else {
        t.is(r.frame[14 + 7], 63, 'hop limit - 1');
      }
      const entry = k.conntrack().find((e) => e.key.sport === l4.sport);
      t.like(entry?.key, { epId: 200, dir: NfDir.INGRESS, dport: 80 }, `${fam}: B's entry`);
    }
    t.is(k.epStats(200, NfDir.INGRESS, NfEpVerdict.ALLOWED).packets, 2n, 'counted for B, ingress');
    t.is(k.epStats(100, NfDir.EGRESS, NfEpVerdict.ALLOWED).packets, 2n, 'and for A, egress');
  },
);

/** Sets an IPv4 frame's TTL and identification and recomputes its header checksum. */
function withIpv4Header(frame: Buffer, ttl: number, id: number): Buffer {
  const f = Buffer.from(frame);
  f[14 + 8] = ttl;
  f.writeUInt16BE(id, 14 + 4);
  f.writeUInt16BE(0, 14 + 10);
  let sum = 0;
  for (let i = 14; i < 34; i += 2) sum += f.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  f.writeUInt16BE(~sum & 0xffff, 14 + 10);
  return f;
}

test.serial('routing keeps the IPv4 header checksum right for every checksum value and TTL', (t) => {
  setup();
  const base = toNode({ src: A.v4, dst: B.v4, l4: tcp(80) });
  let wrong = 0;
  // identifications 257 apart sweep the checksum's high and low bytes (carries included)
  for (const ttl of [2, 64, 255]) {
    for (let id = 0; id <= 0xffff; id += 257) {
      const sent = withIpv4Header(base, ttl, id);
      const r = k.runFrame('ingress', sent);
      const expected = Buffer.from(sent);
      B_MACS.podMac.split(':').forEach((b, i) => (expected[i] = parseInt(b, 16)));
      B_MACS.hostMac.split(':').forEach((b, i) => (expected[6 + i] = parseInt(b, 16)));
      expected[14 + 8] = ttl - 1;
      expected.writeUInt16BE(r.frame.readUInt16BE(14 + 10), 14 + 10);
      if (r.verdict !== TC_ACT_REDIRECT || !ipv4ChecksumOk(r.frame) || !r.frame.equals(expected)) wrong++;
    }
  }
  t.is(wrong, 0, 'redirected, MACs and TTL - 1, checksum right, nothing else changed');
});

test.serial('denied by the destination pod: dropped at the source hook, attributed to the destination', async (t) => {
  setup();
  k.watchEvents();
  k.config({ eventsPerSec: 100 });
  const l4 = tcp(81);
  t.is(k.run('ingress', toNode({ src: A.v4, dst: B.v4, l4 })).verdict, TC_ACT_SHOT);
  const [e] = await k.takeEvents(1);
  t.like(e, { epId: 200, ifindex: B_IF, dir: NfDir.INGRESS, reason: NfReason.ISOLATED, dport: 81 });
  t.is(k.epStats(200, NfDir.INGRESS, NfEpVerdict.DENIED).packets, 1n);
});

test.serial(
  'left to the stack unchanged: not to the node, services, other destinations, expiring TTL, ICMP errors, no flag',
  (t) => {
    setup();
    const stays = (frame: Buffer, label: string) => {
      const r = k.runFrame('ingress', frame);
      t.is(r.verdict, TC_ACT_OK, label);
      t.true(r.frame.equals(frame), `${label}: frame untouched`);
    };
    stays(packet({ src: A.v4, dst: B.v4, l4: tcp(80) }), 'frame to another MAC (not PACKET_HOST)');
    stays(toNode({ src: A.v4, dst: '10.96.0.10', l4: tcp(80) }), "service address (DNAT is the stack's)");
    stays(toNode({ src: A.v4, dst: '10.244.9.9', l4: tcp(80) }), 'not a local pod');
    stays(toNode({ src: A.v4, dst: A.v4, l4: tcp(80) }), 'itself');
    const ttl1 = toNode({ src: A.v4, dst: B.v4, l4: tcp(80) });
    ttl1[14 + 8] = 1;
    stays(ttl1, 'TTL 1: the stack sends time exceeded');
    // port unreachable from A about a UDP packet B sent it (RFC 4443 quotes the whole packet)
    const quoted = packet({ src: B.v6, dst: A.v6, l4: { proto: 'udp', sport: 53, dport: 1000 } }).subarray(14);
    stays(
      toNode({ src: A.v6, dst: B.v6, l4: { proto: 'icmpv6', type: 1, code: 4 }, payload: Buffer.from(quoted) }),
      'ICMP error',
    );
    k.endpoint(B_IF, pod(200, { flags: NfEpFlag.POD, ingressTable: 7 }), NfEpFlag.SVC_CIDRS);
    stays(toNode({ src: A.v4, dst: B.v4, l4: tcp(80) }), 'destination without local delivery (e.g. a VF representor)');
    k.endpoint(B_IF, pod(200, { ingressTable: 7 }), NfEpFlag.SVC_CIDRS);
    k.endpoint(A_IF, pod(100, { flags: NfEpFlag.POD }), NfEpFlag.SVC_CIDRS);
    stays(toNode({ src: A.v4, dst: B.v4, l4: tcp(80) }), 'source without local delivery');
  },
);

test.serial('replies of flows that reached the pod through the stack (DNAT) go back through it', (t) => {
  setup();
  // B now under the hook as the replying backend, A the client (interface 77)
  const C_IF = 77;
  for (const ip of Object.values(A))
    k.local(ip, C_IF, NfLocalKind.POD, { podMac: '02:00:00:00:0a:01', hostMac: '02:00:00:00:0a:02' });
  for (const ip of Object.values(B)) k.local(ip, A_IF, NfLocalKind.POD, B_MACS);
  k.endpoint(C_IF, pod(100), NfEpFlag.SVC_CIDRS);
  k.endpoint(A_IF, pod(200), NfEpFlag.SVC_CIDRS); // no tables: the lookup only when flagged
  const request = (sp: number, via: number) =>
    k.run('egress', packet({ src: A.v4, dst: B.v4, l4: { proto: 'udp', sport: sp, dport: 53 } }), {
      ingressIfindex: via,
    }).verdict;
  const reply = (sp: number) =>
    k.run('ingress', toNode({ src: B.v4, dst: A.v4, l4: { proto: 'udp', sport: 53, dport: sp } })).verdict;

  t.is(reply(999), TC_ACT_REDIRECT, 'B-initiated traffic to A is delivered locally');
  t.is(request(1000, C_IF), TC_ACT_OK, 'a request from A through the stack (after DNAT)');
  t.like(
    k.conntrack().find((e) => e.key.dport === 53 && e.key.sport === 1000)?.val,
    { flags: NfCtFlag.NO_TUNNEL },
    'flagged',
  );
  t.is(reply(1000), TC_ACT_OK, 'its reply goes back through the stack (de-DNAT)');
  t.is(reply(1001), TC_ACT_REDIRECT, 'other traffic to A still delivered locally');
  t.is(request(1002, 33), TC_ACT_OK, 'from another interface: not proof of a stack flow');
  t.is(reply(1002), TC_ACT_REDIRECT);
});
