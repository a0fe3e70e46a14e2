// gatewayProbe: one ARP request / IPv6 neighbour solicitation out of an uplink, from a
// private netns (this process unshares one) to a gateway in a named netns across a veth.
// The answer carries the gateway's MAC; silence is reported after the timeout, a link
// without carrier or a missing interface at once, without sending. GatewayMonitor turns
// those probes into answering / silent per family.
import test from 'ava';
import { native } from '../../src/datapath/native';
import { GatewayMonitor, type GatewayState } from '../../src/redirect/gateway-monitor';
import { netnsAdd, run, throwsNative } from './helpers';

const GW_MAC = '02:00:00:00:0a:01';
let gwNetns: string;

/** Until the kernel's linkwatch has brought both ends up (qdiscs active, operstate UP)
 *  and their link-local addresses are past duplicate address detection. */
async function operUp(): Promise<void> {
  const end = Date.now() + 5000;
  const ready = (ns: string[], dev: string): boolean =>
    run('ip', [...ns, '-o', 'link', 'show', dev]).includes('state UP') &&
    !run('ip', [...ns, '-6', 'addr', 'show', 'dev', dev]).includes('tentative');
  while (!(ready([], 'up0') && ready(['-n', gwNetns], 'gw0'))) {
    if (Date.now() > end) throw new Error('veth up0/gw0: not up (or addresses tentative) after 5 s');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test.before(async () => {
  native.unshareNet();
  const gw = netnsAdd('nf-gwprobe');
  gwNetns = gw.name;
  process.once('exit', gw.del);
  run('ip', ['link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'gw0', 'address', GW_MAC, 'netns', gwNetns]);
  run('ip', ['addr', 'add', '192.0.2.2/24', 'dev', 'up0']);
  run('ip', ['addr', 'add', '2001:db8::2/64', 'dev', 'up0', 'nodad']);
  run('ip', ['link', 'set', 'up0', 'up']);
  run('ip', ['-n', gwNetns, 'addr', 'add', '192.0.2.1/24', 'dev', 'gw0']);
  run('ip', ['-n', gwNetns, 'addr', 'add', '2001:db8::1/64', 'dev', 'gw0', 'nodad']);
  run('ip', ['-n', gwNetns, 'link', 'set', 'gw0', 'up']);
  await operUp();
});

test.serial('a gateway that answers: IPv4 (ARP) and IPv6 (neighbour solicitation), with its MAC', async (t) => {
  t.deepEqual(await native.gatewayProbe('up0', 4, '192.0.2.1', 1000), { answered: true, sent: true, mac: GW_MAC });
  t.deepEqual(await native.gatewayProbe('up0', 6, '2001:db8::1', 1000), { answered: true, sent: true, mac: GW_MAC });
  // The gateway's automatic link-local address answers too (scope: the uplink).
  const ll = run('ip', ['-n', gwNetns, '-6', 'addr', 'show', 'dev', 'gw0', 'scope', 'link']).match(
    /inet6 (fe80::[0-9a-f:]+)\//,
  )?.[1];
  t.truthy(ll, 'gw0 has a link-local address');
  t.like(await native.gatewayProbe('up0', 6, ll!, 1000), { answered: true, mac: GW_MAC });
});

test.serial('nobody at the address: unanswered after the timeout, the request was sent', async (t) => {
  for (const [family, address] of [
    [4, '192.0.2.9'],
    [6, '2001:db8::9'],
  ] as const) {
    const start = Date.now();
    const r = await native.gatewayProbe('up0', family, address, 200);
    const ms = Date.now() - start;
    t.deepEqual(r, { answered: false, sent: true, cause: 'no answer within 200 ms' });
    t.true(ms >= 190 && ms < 1500, `IPv${family}: resolved after ${ms} ms`);
  }
});

test.serial('the gateway address removed, then the link without carrier, then no interface', async (t) => {
  run('ip', ['-n', gwNetns, 'addr', 'del', '192.0.2.1/24', 'dev', 'gw0']);
  t.like(await native.gatewayProbe('up0', 4, '192.0.2.1', 200), { answered: false, sent: true });
  run('ip', ['-n', gwNetns, 'addr', 'add', '192.0.2.1/24', 'dev', 'gw0']);
  t.like(await native.gatewayProbe('up0', 4, '192.0.2.1', 1000), { answered: true });

  run('ip', ['-n', gwNetns, 'link', 'set', 'gw0', 'down']);
  const start = Date.now();
  t.deepEqual(await native.gatewayProbe('up0', 4, '192.0.2.1', 1000), {
    answered: false,
    sent: false,
    cause: 'uplink up0 has no carrier',
  });
  t.true(Date.now() - start < 500, 'no carrier: decided without waiting for the timeout');
  run('ip', ['link', 'set', 'up0', 'down']);
  t.deepEqual(await native.gatewayProbe('up0', 6, '2001:db8::1', 1000), {
    answered: false,
    sent: false,
    cause: 'uplink up0 is down',
  });
  t.deepEqual(await native.gatewayProbe('nope0', 4, '192.0.2.1', 1000), {
    answered: false,
    sent: false,
    cause: 'uplink nope0 not found',
  });
});

test.serial('bad arguments throw naming the field', (t) => {
  const e = throwsNative(t, () => native.gatewayProbe('up0', 4, '2001:db8::1', 100), 'EINVAL', 'gatewayProbe');
  t.regex(e.message, /address: not an IPv4 address: 2001:db8::1/);
  t.regex(
    throwsNative(t, () => native.gatewayProbe('up0', 5 as 4, '192.0.2.1', 100), 'EINVAL', 'gatewayProbe').message,
    /family: must be 4 or 6/,
  );
  t.regex(
    throwsNative(t, () => native.gatewayProbe('', 4, '192.0.2.1', 100), 'EINVAL', 'gatewayProbe').message,
    /ifname/,
  );
});

test.serial(
  'GatewayMonitor: answering after an answer, silent after two missed probes, onChange on each change',
  async (t) => {
    run('ip', ['link', 'set', 'up0', 'up']);
    run('ip', ['-n', gwNetns, 'link', 'set', 'gw0', 'up']);
    // Admin down (the test before) took the IPv6 addresses.
    run('ip', ['addr', 'replace', '2001:db8::2/64', 'dev', 'up0', 'nodad']);
    run('ip', ['-n', gwNetns, 'addr', 'replace', '2001:db8::1/64', 'dev', 'gw0', 'nodad']);
    await operUp();
    const changes: GatewayState[] = [];
    const timings = { intervalMs: 50, timeoutMs: 100, misses: 2 };
    const monitor = new GatewayMonitor(native, (s) => changes.push(s), timings);
    t.teardown(() => monitor.stop());
    const targets = [
      { family: 4 as const, address: '192.0.2.1' },
      { family: 6 as const, address: '2001:db8::1' },
    ];
    const first = await monitor.follow('up0', targets);
    t.deepEqual(first.map((g) => [g.family, g.answering]).sort(), [
      [4, true],
      [6, true],
    ]);

    const start = Date.now();
    run('ip', ['-n', gwNetns, 'addr', 'del', '192.0.2.1/24', 'dev', 'gw0']);
    while (changes.length === 0 && Date.now() - start < 3000) await new Promise((r) => setTimeout(r, 10));
    const ms = Date.now() - start;
    t.like(changes[0], { family: 4, answering: false, cause: 'no answer within 100 ms' });
    t.true(
      ms >= timings.timeoutMs * timings.misses && ms <= 2 * (timings.intervalMs + timings.timeoutMs) * timings.misses,
      `silent after ${ms} ms: two missed probes`,
    );
    t.deepEqual((await monitor.follow('up0', targets)).map((g) => [g.family, g.answering]).sort(), [
      [4, false],
      [6, true],
    ]);

    run('ip', ['-n', gwNetns, 'addr', 'add', '192.0.2.1/24', 'dev', 'gw0']);
    while (changes.length === 1 && Date.now() - start < 6000) await new Promise((r) => setTimeout(r, 10));
    t.like(changes[1], { family: 4, answering: true, cause: undefined });

    // A silent gateway followed from the start: the first verdict comes after two misses.
    const fresh = new GatewayMonitor(native, () => t.fail('no change expected'), timings);
    t.teardown(() => fresh.stop());
    const t0 = Date.now();
    const [silent] = await fresh.follow('up0', [{ family: 4, address: '192.0.2.9' }]);
    t.like(silent, { answering: false, cause: 'no answer within 100 ms' });
    t.true(Date.now() - t0 >= timings.timeoutMs * timings.misses, 'the first verdict waited for two probes');
    fresh.stop();
    monitor.stop();
    const seen = changes.length;
    await new Promise((r) => setTimeout(r, 300));
    t.is(changes.length, seen, 'stopped: no more probes, no more changes');
  },
);
