// The transparent tunnel never black-holes same-node traffic (issue 16), on a lab node whose
// IPv4 rp_filter is strict (1: all, default, eth0) from the start, in both modes. The
// gateway (the fabric netns) fails in each way the agent must notice: it does not answer
// ARP when the agent starts and later while it runs, the uplink loses its carrier, the
// gateway's address goes away. Each time the agent turns the tunnel off within 2 s of the
// fault (status.tunnel.since on /readyz, the agent's own clock, this machine's), same-node
// traffic then flows directly (the fabric counts no hairpin), the isolated pod c stays
// denied throughout, /readyz and /metrics say why, and once the gateway is back the
// traffic is tunnelled again. IPv6 is probed too (the lab's link-local gateway fe80::1):
// the tunnel needs every configured gateway.
import test, { type ExecutionContext } from 'ava';
import { fabricCounters } from '../../src/lab/probe';
import { AgentLab, demoPod, DEMO_NAMESPACE, isolate, labConfig, NODE_N1 } from './helpers/agent-lab';

// c denies all ingress: policy holds whether the tunnel is on or off.
const PODS = [DEMO_NAMESPACE, demoPod('a', '10.244.1.2'), demoPod('b', '10.244.1.3'), demoPod('c', '10.244.1.4'), NODE_N1].join('---\n');
const GATEWAY = '169.254.0.1';
const TUNNEL = (mode: string): string => labConfig(`redirect: { mode: ${mode}, uplink: eth0, gateway: ${GATEWAY}, gateway6: fe80::1 }\n`);
/** Off within this long after the fault (the README's bound). */
const BOUND_MS = 2000;

interface Tunnel {
  mode: string;
  enabled: boolean;
  error?: string;
  since?: string;
  gateways?: { family: number; address: string; answering: boolean; cause?: string }[];
}

let lab: AgentLab;
let fabricNetns: string;
let fabricIf: string;

const fabric = (...argv: string[]): Promise<string> => lab.exec(fabricNetns, argv);
const nodeSysctl = async (key: string): Promise<string> => (await lab.exec(lab.node().netns, ['sysctl', '-n', key])).trim();

test.before(async () => {
  lab = await AgentLab.up('tungw', { 'pods.yaml': PODS, 'isolate-c.yaml': isolate('c'), 'netfence.yaml': labConfig() });
  fabricNetns = lab.state.plan!.fabricNetns;
  fabricIf = lab.state.plan!.nodes[0].fabricIf;
  await lab.exec(lab.node().netns, ['sysctl', '-q', '-w', 'net.ipv4.conf.all.rp_filter=1', 'net.ipv4.conf.default.rp_filter=1', 'net.ipv4.conf.eth0.rp_filter=1']);
});
test.after.always(async () => {
  await lab?.down();
});

const hairpins = async (): Promise<number> => (await fabricCounters(lab.state)).get('hairpin:n1') ?? 0;

async function tunnelStatus(): Promise<Tunnel> {
  return (JSON.parse(await lab.http('/readyz')) as { tunnel: Tunnel }).tunnel;
}

/** Polls /readyz until the tunnel is `enabled` (or not); fails after `timeoutMs`. */
async function waitTunnel(t: ExecutionContext, enabled: boolean, timeoutMs = 10_000): Promise<Tunnel> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await tunnelStatus();
    if (s.enabled === enabled) return s;
    if (Date.now() > deadline) t.fail(`tunnel still ${s.enabled ? 'on' : 'off'} after ${timeoutMs} ms: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** a -> b answered by b, and the gateway counted hairpinned packets (tunnelled) or none
 *  (direct); a -> c denied by c's policy either way. */
async function assertPath(t: ExecutionContext, tunnelled: boolean, what: string): Promise<void> {
  const before = await hairpins();
  const [r, denied] = await lab.probeFull([{ from: 'demo/a', to: 'demo/b', port: '80/TCP' }, { from: 'demo/a', to: 'demo/c', port: '80/TCP' }], 1500);
  t.is(denied.verdict, 'deny', `${what}: a -> c stays denied`);
  t.is(r.verdict, 'allow', `${what}: a -> b flows (${r.detail ?? ''})`);
  t.is(r.reply, 'netfence demo/b', `${what}: b answered`);
  const counted = (await hairpins()) - before;
  if (tunnelled) t.true(counted >= 4, `${what}: the gateway counted ${counted} hairpinned packets (tunnelled)`);
  else t.is(counted, 0, `${what}: nothing crossed the gateway (direct)`);
}

async function metric(name: string): Promise<string[]> {
  return (await lab.http('/metrics')).split('\n').filter((l) => l.startsWith(name));
}

/** What the fabric loses with its side of the uplink down or without its IPv4 address (the
 *  kernel drops the link's routes; admin down drops its IPv6 addresses): a function that
 *  puts it back, for the gateway's repair. */
async function fabricRestorer(): Promise<() => Promise<void>> {
  const routes = (await fabric('ip', 'route', 'show', 'dev', fabricIf)).trim().split('\n').filter(Boolean);
  const gateway6 = lab.state.plan!.gateway6;
  return async () => {
    await fabric('ip', 'addr', 'replace', `${gateway6}/64`, 'dev', fabricIf, 'nodad');
    for (const r of routes) await fabric('ip', 'route', 'replace', ...r.trim().split(/\s+/).filter((w) => w !== 'linkdown'), 'dev', fabricIf);
  };
}

/** Injects `fault` and asserts the tunnel goes off within the bound with `cause` on /readyz,
 *  traffic flows directly, the metrics say so; `repair` brings the tunnel back. */
async function outage(t: ExecutionContext, what: string, cause: RegExp, fault: () => Promise<unknown>, repair: () => Promise<unknown>): Promise<void> {
  const restore = await fabricRestorer();
  const t0 = Date.now();
  await fault();
  try {
    const off = await waitTunnel(t, false);
    const ms = Date.parse(off.since!) - t0;
    t.log(`${what}: tunnel off ${ms} ms after the fault`);
    t.true(ms <= BOUND_MS, `${what}: tunnel off ${ms} ms after the fault (bound ${BOUND_MS} ms)`);
    t.regex(off.error ?? '', cause, `${what}: /readyz names the cause`);
    t.true(off.gateways?.some((g) => !g.answering), `${what}: /readyz shows a silent gateway: ${JSON.stringify(off.gateways)}`);
    t.deepEqual(await metric('netfence_tunnel_enabled '), ['netfence_tunnel_enabled 0']);
    t.true((await metric('netfence_tunnel_gateway_answering{')).some((l) => l.endsWith(' 0')), 'the gateway metric shows a silent gateway');
    await assertPath(t, false, `${what}, tunnel off`);
  } finally {
    await repair();
    await restore();
  }
  const on = await waitTunnel(t, true);
  t.is(on.error, undefined, `${what} repaired: no error left on /readyz`);
  t.true(on.gateways!.every((g) => g.answering), `${what} repaired: every gateway answers`);
  t.deepEqual(await metric('netfence_tunnel_enabled '), ['netfence_tunnel_enabled 1']);
  await assertPath(t, true, `${what} repaired, tunnel on`);
}

// The fabric stops answering ARP requests at its side of the uplink (it still forwards).
const NFT_TABLE = 'nfgwtest';
const silenceGateway = (): Promise<string> =>
  fabric('sh', '-c', `nft add table arp ${NFT_TABLE} && nft add chain arp ${NFT_TABLE} in '{ type filter hook input priority 0; }' && nft add rule arp ${NFT_TABLE} in iifname ${fabricIf} arp operation request drop`);
const answerGateway = (): Promise<string> => fabric('nft', 'delete', 'table', 'arp', NFT_TABLE);

for (const mode of ['direct', 'fwmark']) {
  test.serial(`${mode}: a gateway that does not answer when the agent starts leaves the tunnel off until it answers`, async (t) => {
    await lab.kill('SIGTERM');
    await silenceGateway();
    lab.write('netfence.yaml', TUNNEL(mode));
    const { ready } = await lab.startAgent();
    const status = (ready.body as { tunnel: Tunnel }).tunnel;
    t.like(status, { mode, enabled: false });
    t.regex(status.error ?? '', /gateway 169\.254\.0\.1 does not answer on eth0 .*no answer within/);
    t.true(status.gateways!.some((g) => g.family === 6 && g.answering), `the IPv6 gateway answers: ${JSON.stringify(status.gateways)}`);
    t.true(
      lab.agentRecords().some((r) => r.level === 50 && r.stage === 'tunnel' && String(r.msg).includes('does not answer')),
      'the agent logged the error',
    );
    let t0 = 0;
    try {
      await assertPath(t, false, 'silent gateway at start');
    } finally {
      t0 = Date.now();
      await answerGateway();
    }
    const on = await waitTunnel(t, true);
    t.true(Date.parse(on.since!) - t0 <= BOUND_MS, 'tunnel on within the bound once the gateway answers');
    await assertPath(t, true, 'gateway answering');
  });

  test.serial(`${mode}: the gateway stops answering while the agent runs`, async (t) => {
    await waitTunnel(t, true);
    await outage(t, 'silent gateway', /does not answer .*no answer within/, silenceGateway, answerGateway);
  });

  test.serial(`${mode}: the uplink loses its carrier`, async (t) => {
    await waitTunnel(t, true);
    await outage(t, 'carrier loss', /uplink eth0 has no carrier/, () => fabric('ip', 'link', 'set', fabricIf, 'down'), () => fabric('ip', 'link', 'set', fabricIf, 'up'));
  });

  test.serial(`${mode}: the gateway's address goes away`, async (t) => {
    await waitTunnel(t, true);
    await outage(t, 'gateway address removed', /does not answer .*no answer within/, () => fabric('ip', 'addr', 'del', `${GATEWAY}/32`, 'dev', fabricIf), () =>
      fabric('ip', 'addr', 'add', `${GATEWAY}/32`, 'dev', fabricIf),
    );
  });

  test.serial(`${mode}: strict rp_filter on the node: tunnelled replies come back; only the uplink is loosened`, async (t) => {
    await waitTunnel(t, true);
    await assertPath(t, true, 'strict rp_filter');
    t.is(await nodeSysctl('net.ipv4.conf.all.rp_filter'), '1', 'conf/all stays strict');
    t.is(await nodeSysctl('net.ipv4.conf.default.rp_filter'), '1', 'conf/default stays strict');
    t.is(await nodeSysctl('net.ipv4.conf.eth0.rp_filter'), '2', 'the uplink is loose');
  });
}
