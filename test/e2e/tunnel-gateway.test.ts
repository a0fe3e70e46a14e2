// The transparent tunnel never black-holes same-node traffic (issue 16), on a lab node whose
// IPv4 rp_filter is strict (1: all, default, eth0) from the start, in both modes. The
// gateway (the fabric netns) fails in each way the agent must notice: it does not answer
// ARP when the agent starts and later while it runs, the uplink loses its carrier, the
// gateway's address goes away. Each time the agent turns the tunnel off within 2 s of the
// fault (status.tunnel.since on /readyz, the agent's own clock, this machine's), same-node
// traffic then flows directly (the fabric counts no hairpin), the isolated pod c stays
// denied throughout, /readyz and /metrics say why, and once the gateway is back the
// traffic is tunnelled again. The pods are dual-stack and IPv6 has its own gateway (the
// lab's link-local fe80::1): the tunnel is switched per family, so a fault of one family's
// gateway sends that family directly while the other stays tunnelled; losing the uplink's
// carrier turns both off.
import test, { type ExecutionContext } from 'ava';
import { fabricCounters } from '../../src/lab/probe';
import { NF_RULE_PRIORITY } from '../../src/redirect/tunnel';
import { AgentLab, demoPod, DEMO_NAMESPACE, isolate, labConfig, NODE_N1 } from './helpers/agent-lab';

// c denies all ingress: policy holds whether the tunnel is on or off.
const PODS = [
  DEMO_NAMESPACE,
  ...['a', 'b', 'c'].map((p, i) => demoPod(p, [`10.244.1.${i + 2}`, `fd00:244:1::${i + 2}`])),
  NODE_N1,
].join('---\n');
const GATEWAY = '169.254.0.1';
const TUNNEL = (mode: string): string =>
  labConfig(`redirect: { mode: ${mode}, uplink: eth0, gateway: ${GATEWAY}, gateway6: fe80::1 }\n`);
/** Off within this long after the fault (the README's bound). */
const BOUND_MS = 2000;

type Family = 4 | 6;

interface Tunnel {
  mode: string;
  enabled: boolean;
  off: Family[];
  error?: string;
  since?: string;
  gateways?: { family: number; address: string; answering: boolean; cause?: string }[];
}

let lab: AgentLab;
let fabricNetns: string;
let fabricIf: string;

const fabric = (...argv: string[]): Promise<string> => lab.exec(fabricNetns, argv);
const nodeSysctl = async (key: string): Promise<string> =>
  (await lab.exec(lab.node().netns, ['sysctl', '-n', key])).trim();

test.before(async () => {
  lab = await AgentLab.up('tungw', { 'pods.yaml': PODS, 'isolate-c.yaml': isolate('c'), 'netfence.yaml': labConfig() });
  fabricNetns = lab.state.plan!.fabricNetns;
  fabricIf = lab.state.plan!.nodes[0].fabricIf;
  await lab.exec(lab.node().netns, [
    'sysctl',
    '-q',
    '-w',
    'net.ipv4.conf.all.rp_filter=1',
    'net.ipv4.conf.default.rp_filter=1',
    'net.ipv4.conf.eth0.rp_filter=1',
  ]);
});
test.after.always(async () => {
  await lab?.down();
});

const hairpins = async (family: Family): Promise<number> =>
  (await fabricCounters(lab.state, family)).get('hairpin:n1') ?? 0;

async function tunnelStatus(): Promise<Tunnel> {
  return (JSON.parse(await lab.http('/readyz')) as { tunnel: Tunnel }).tunnel;
}

const ON: Family[] = [];
const BOTH: Family[] = [4, 6];

/** Polls /readyz until the tunnel is off for exactly the families `off` (on for the others;
 *  BOTH: the tunnel is off); throws after `timeoutMs`. */
async function waitTunnel(off: Family[], timeoutMs = 10_000): Promise<Tunnel> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await tunnelStatus();
    if (s.enabled === off.length < BOTH.length && s.off.join() === off.join()) return s;
    if (Date.now() > deadline)
      throw new Error(`tunnel not off for exactly [${off.join()}] after ${timeoutMs} ms: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Per family: a -> b answered by b, and the gateway counted hairpinned packets of that
 *  family (tunnelled) or none (direct, the families in `off`); a -> c denied by c's policy
 *  either way. */
async function assertPath(t: ExecutionContext, off: Family[], what: string): Promise<void> {
  for (const family of BOTH) {
    const tunnelled = !off.includes(family);
    const before = await hairpins(family);
    const [r, denied] = await lab.probeFull(
      [
        { from: 'demo/a', to: 'demo/b', port: '80/TCP', family },
        { from: 'demo/a', to: 'demo/c', port: '80/TCP', family },
      ],
      1500,
    );
    const how = `${what}, IPv${family}`;
    t.is(denied.verdict, 'deny', `${how}: a -> c stays denied`);
    t.is(r.verdict, 'allow', `${how}: a -> b flows (${r.detail ?? ''})`);
    t.is(r.reply, 'netfence demo/b', `${how}: b answered`);
    const counted = (await hairpins(family)) - before;
    if (tunnelled) t.true(counted >= 4, `${how}: the gateway counted ${counted} hairpinned packets (tunnelled)`);
    else t.is(counted, 0, `${how}: nothing crossed the gateway (direct)`);
  }
}

/** /metrics: the tunnel gauge, and the per-family gauge 0 for the families in `off`. */
async function assertMetrics(t: ExecutionContext, off: Family[], what: string): Promise<void> {
  t.deepEqual(
    await metric('netfence_tunnel_enabled '),
    [`netfence_tunnel_enabled ${off.length < BOTH.length ? 1 : 0}`],
    `${what}: netfence_tunnel_enabled`,
  );
  const families = BOTH.map((f) => `netfence_tunnel_family_enabled{family="${f}"} ${off.includes(f) ? 0 : 1}`);
  t.deepEqual(
    (await metric('netfence_tunnel_family_enabled{')).sort(),
    families,
    `${what}: netfence_tunnel_family_enabled`,
  );
}

async function metric(name: string): Promise<string[]> {
  return (await lab.http('/metrics')).split('\n').filter((l) => l.startsWith(name));
}

/** What the fabric loses with its side of the uplink down or without its IPv4 address (the
 *  kernel drops the link's routes of both families, among them those to the pods' IPv6
 *  addresses; admin down drops its IPv6 addresses): a function that
 *  puts it back, for the gateway's repair. */
async function fabricRestorer(): Promise<() => Promise<void>> {
  // the kernel's own IPv6 routes (fe80::/64) come back with the link and its addresses
  const routes = async (family: Family): Promise<string[][]> =>
    (await fabric('ip', `-${family}`, 'route', 'show', 'dev', fabricIf))
      .trim()
      .split('\n')
      .filter((r) => r && !(family === 6 && r.includes('proto kernel')))
      .map((r) => [
        `-${family}`,
        'route',
        'replace',
        ...r
          .trim()
          .split(/\s+/)
          .filter((w) => w !== 'linkdown'),
        'dev',
        fabricIf,
      ]);
  const replays = [...(await routes(4)), ...(await routes(6))];
  const gateway6 = lab.state.plan!.gateway6;
  return async () => {
    await fabric('ip', 'addr', 'replace', `${gateway6}/64`, 'dev', fabricIf, 'nodad');
    for (const r of replays) await fabric('ip', ...r);
  };
}

/** fwmark mode: netfence's ip rule exists for the tunnelled families only (direct mode: none). */
async function assertRules(t: ExecutionContext, mode: string, off: Family[], what: string): Promise<void> {
  for (const family of BOTH) {
    const rules = await lab.exec(lab.node().netns, ['ip', `-${family}`, 'rule', 'show']);
    const ours = rules.split('\n').some((l) => l.startsWith(`${NF_RULE_PRIORITY}:`) && l.includes('fwmark'));
    t.is(
      ours,
      mode === 'fwmark' && !off.includes(family),
      `${what}: IPv${family} fwmark rule ${ours ? 'present' : 'absent'}`,
    );
  }
}

/** Injects `fault` and asserts the tunnel goes off for the families `off` within the bound
 *  with `cause` on /readyz, their traffic flows directly while the other family's stays
 *  tunnelled, the metrics say so; `repair` brings the tunnel back for both. */
async function outage(
  t: ExecutionContext,
  mode: string,
  what: string,
  off: Family[],
  cause: RegExp,
  fault: () => Promise<unknown>,
  repair: () => Promise<unknown>,
): Promise<void> {
  const restore = await fabricRestorer();
  const t0 = Date.now();
  await fault();
  try {
    const down = await waitTunnel(off);
    const ms = Date.parse(down.since!) - t0;
    t.log(`${what}: tunnel off for IPv${off.join(', IPv')} ${ms} ms after the fault`);
    t.true(ms <= BOUND_MS, `${what}: tunnel off ${ms} ms after the fault (bound ${BOUND_MS} ms)`);
    t.regex(down.error ?? '', cause, `${what}: /readyz names the cause`);
    t.deepEqual(
      down.gateways
        ?.filter((g) => !g.answering)
        .map((g) => g.family)
        .sort((a, b) => a - b),
      off,
      `${what}: /readyz shows the silent gateways: ${JSON.stringify(down.gateways)}`,
    );
    await assertMetrics(t, off, what);
    await assertRules(t, mode, off, what);
    const silent = (await metric('netfence_tunnel_gateway_answering{')).filter((l) => l.endsWith(' 0'));
    t.is(silent.length, off.length, `the gateway metric shows the silent gateways: ${silent.join(', ')}`);
    await assertPath(t, off, `${what}, tunnel off for IPv${off.join(', IPv')}`);
  } finally {
    await repair();
    await restore();
  }
  const on = await waitTunnel(ON);
  t.is(on.error, undefined, `${what} repaired: no error left on /readyz`);
  t.true(
    on.gateways!.every((g) => g.answering),
    `${what} repaired: every gateway answers`,
  );
  await assertMetrics(t, ON, `${what} repaired`);
  await assertRules(t, mode, ON, `${what} repaired`);
  await assertPath(t, ON, `${what} repaired, tunnel on`);
}

// The fabric stops answering ARP requests (IPv4) or neighbour solicitations (IPv6) at its
// side of the uplink (it still forwards).
const NFT_TABLE = 'nfgwtest';
const NFT_SILENCE = { 4: ['arp', 'arp operation request'], 6: ['ip6', 'icmpv6 type nd-neighbor-solicit'] } as const;
const silenceGateway = (family: Family = 4): Promise<string> => {
  const [nftFamily, match] = NFT_SILENCE[family];
  const table = `${nftFamily} ${NFT_TABLE}`;
  return fabric(
    'sh',
    '-c',
    `nft add table ${table} && nft add chain ${table} in '{ type filter hook input priority 0; }' && nft add rule ${table} in iifname ${fabricIf} ${match} drop`,
  );
};
const answerGateway = (family: Family = 4): Promise<string> =>
  fabric('nft', 'delete', 'table', NFT_SILENCE[family][0], NFT_TABLE);

for (const mode of ['direct', 'fwmark']) {
  test.serial(
    `${mode}: a gateway that does not answer when the agent starts leaves the tunnel off until it answers`,
    async (t) => {
      await lab.kill('SIGTERM');
      await silenceGateway();
      lab.write('netfence.yaml', TUNNEL(mode));
      const { ready } = await lab.startAgent();
      const status = (ready.body as { tunnel: Tunnel }).tunnel;
      t.like(status, { mode, enabled: true, off: [4] });
      t.regex(status.error ?? '', /off for IPv4: gateway 169\.254\.0\.1 does not answer on eth0 .*no answer within/);
      t.true(
        status.gateways!.some((g) => g.family === 6 && g.answering),
        `the IPv6 gateway answers: ${JSON.stringify(status.gateways)}`,
      );
      t.true(
        lab
          .agentRecords()
          .some((r) => r.level === 50 && r.stage === 'tunnel' && String(r.msg).includes('does not answer')),
        'the agent logged the error',
      );
      let t0 = 0;
      try {
        await assertPath(t, [4], 'silent gateway at start');
      } finally {
        t0 = Date.now();
        await answerGateway();
      }
      const on = await waitTunnel(ON);
      t.true(Date.parse(on.since!) - t0 <= BOUND_MS, 'tunnel on within the bound once the gateway answers');
      await assertPath(t, ON, 'gateway answering');
    },
  );

  test.serial(`${mode}: the gateway stops answering while the agent runs`, async (t) => {
    await waitTunnel(ON);
    await outage(
      t,
      mode,
      'silent gateway',
      [4],
      /off for IPv4: .*does not answer .*no answer within/,
      silenceGateway,
      answerGateway,
    );
  });

  test.serial(`${mode}: the IPv6 gateway stops answering: IPv6 flows directly, IPv4 stays tunnelled`, async (t) => {
    await waitTunnel(ON);
    await outage(
      t,
      mode,
      'silent IPv6 gateway',
      [6],
      /off for IPv6: gateway fe80::1 does not answer on eth0 \(IPv6 neighbour probe/,
      () => silenceGateway(6),
      () => answerGateway(6),
    );
  });

  test.serial(`${mode}: the uplink loses its carrier`, async (t) => {
    await waitTunnel(ON);
    await outage(
      t,
      mode,
      'carrier loss',
      BOTH,
      /uplink eth0 has no carrier/,
      () => fabric('ip', 'link', 'set', fabricIf, 'down'),
      () => fabric('ip', 'link', 'set', fabricIf, 'up'),
    );
  });

  test.serial(`${mode}: the gateway's address goes away`, async (t) => {
    await waitTunnel(ON);
    await outage(
      t,
      mode,
      'gateway address removed',
      [4],
      /does not answer .*no answer within/,
      () => fabric('ip', 'addr', 'del', `${GATEWAY}/32`, 'dev', fabricIf),
      () => fabric('ip', 'addr', 'add', `${GATEWAY}/32`, 'dev', fabricIf),
    );
  });

  test.serial(
    `${mode}: strict rp_filter on the node: tunnelled replies come back; only the uplink is loosened`,
    async (t) => {
      await waitTunnel(ON);
      await assertPath(t, ON, 'strict rp_filter');
      t.is(await nodeSysctl('net.ipv4.conf.all.rp_filter'), '1', 'conf/all stays strict');
      t.is(await nodeSysctl('net.ipv4.conf.default.rp_filter'), '1', 'conf/default stays strict');
      t.is(await nodeSysctl('net.ipv4.conf.eth0.rp_filter'), '2', 'the uplink is loose');
    },
  );
}
