// libnl-route bindings in a private netns (this process unshares one): links, link
// events, ip rules and routes, each cross-checked with iproute2.
import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { native } from '../../src/datapath/native';
import type { LinkEvent, Route, RouteRule } from '../../src/datapath/native-api';
import { netnsAdd, pinnedClassifier, run, throwsNative } from './helpers';

const NF_PROTO = 0x4e;

test.before(() => {
  native.unshareNet();
});

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await sleep(5);
}

test.serial('links: loopback, then a veth pair seen by linkWatch and linkByName', async (t) => {
  const [lo] = native.linkList();
  t.like(lo, { ifindex: 1, name: 'lo', kind: 'loopback', mac: '00:00:00:00:00:00', up: false, masterIfindex: 0 });
  run('ip', ['link', 'set', 'lo', 'up']);
  t.true(native.linkByName('lo')!.up);
  t.is(native.linkByName('nope0'), null);

  const all: LinkEvent[] = [];
  const w = native.linkWatch((ev) => all.push(ev));
  const links = (): Extract<LinkEvent, { link: unknown }>[] => all.flatMap((e) => ('link' in e ? [e] : []));
  t.teardown(() => w.close());
  run('ip', ['link', 'add', 'nlva', 'address', '02:00:00:00:00:0a', 'type', 'veth', 'peer', 'name', 'nlvb']);
  await until(() => links().some((e) => e.type === 'new' && e.link.name === 'nlva'));
  const added = links().find((e) => e.type === 'new' && e.link.name === 'nlva');
  t.like(added?.link, { kind: 'veth', mac: '02:00:00:00:00:0a', up: false });

  const a = native.linkByName('nlva')!;
  const b = native.linkByName('nlvb')!;
  t.is(a.linkIfindex, b.ifindex, 'veth peer');
  t.is(b.linkIfindex, a.ifindex);
  t.deepEqual(
    native
      .linkList()
      .map((l) => l.name)
      .sort(),
    ['lo', 'nlva', 'nlvb'],
  );
  run('ip', ['link', 'add', 'nlbr', 'type', 'bridge']);
  run('ip', ['link', 'set', 'nlvb', 'master', 'nlbr']);
  t.is(native.linkByName('nlvb')!.masterIfindex, native.linkByName('nlbr')!.ifindex);
  t.is(native.linkByName('nlbr')!.kind, 'bridge');

  // a pod's host route in the main table is an event; a route of another table is not
  run('ip', ['link', 'set', 'nlva', 'up']);
  run('ip', ['link', 'set', 'nlvb', 'up']);
  const routes = (): string[] => all.flatMap((e) => ('family' in e ? [`${e.type}/${e.family}`] : []));
  run('ip', ['route', 'add', '10.9.0.5/32', 'dev', 'nlva', 'table', '100']);
  run('ip', ['route', 'add', '10.9.0.0/24', 'dev', 'nlva']);
  run('ip', ['route', 'add', '10.9.0.7/32', 'dev', 'nlva']);
  run('ip', ['-6', 'route', 'add', 'fd00:9::7/128', 'dev', 'nlva']);
  await until(() => routes().length >= 2);
  await sleep(50);
  t.deepEqual(routes(), ['route-new/4', 'route-new/6'], 'host routes of the main table only');
  run('ip', ['route', 'del', '10.9.0.7/32', 'dev', 'nlva']);
  await until(() => routes().length >= 3);
  t.is(routes()[2], 'route-del/4');

  run('ip', ['link', 'del', 'nlva']);
  await until(() => links().some((e) => e.type === 'del' && e.link.name === 'nlvb'));
  t.true(links().some((e) => e.type === 'del' && e.link.ifindex === a.ifindex));
  t.true(links().some((e) => e.type === 'del' && e.link.ifindex === b.ifindex));
  w.close();
  const n = all.length;
  run('ip', ['link', 'add', 'nlvc', 'type', 'veth', 'peer', 'name', 'nlvd']);
  await sleep(50);
  t.is(all.length, n, 'no events after close');
  w.close();
});

test.serial('linkPeerMac: the MAC of a veth peer in another netns, over netlink', (t) => {
  const ns = netnsAdd('nf-nt-peer');
  t.teardown(ns.del); // takes the veth pair with it
  run('ip', [
    'link',
    'add',
    'nlp0',
    'address',
    '02:00:00:00:00:01',
    'type',
    'veth',
    'peer',
    'name',
    'eth0',
    'netns',
    ns.name,
  ]);
  run('ip', ['-n', ns.name, 'link', 'set', 'eth0', 'address', '02:00:00:00:00:42']);
  const host = native.linkByName('nlp0')!;
  t.is(typeof host.linkNetnsid, 'number', 'the peer netns by nsid');
  t.is(native.linkPeerMac(host), '02:00:00:00:00:42', 'asked by nsid, not of this netns');
  t.true(run('ip', ['netns', 'list-id']).includes(ns.name), 'the kernel assigned the peer netns an nsid');
  t.is(
    native.linkPeerMac(native.linkList().find((l) => l.name === 'nlp0')!),
    '02:00:00:00:00:42',
    'as linkList gives the veth',
  );

  // peer in the same netns: no link-netnsid, asked without IFLA_TARGET_NETNSID
  run('ip', ['link', 'add', 'nlp1', 'type', 'veth', 'peer', 'name', 'nlp2', 'address', '02:00:00:00:00:43']);
  t.teardown(() => run('ip', ['link', 'del', 'nlp1']));
  const same = native.linkByName('nlp1')!;
  t.is(same.linkNetnsid, undefined);
  t.is(native.linkPeerMac(same), '02:00:00:00:00:43');

  t.is(native.linkPeerMac(native.linkByName('lo')!), null, 'loopback is not a veth');
  t.is(native.linkPeerMac({ ...same, linkIfindex: 99999 }), null, 'no such link');
  t.is(native.linkPeerMac({ ...same, linkIfindex: 0 }), null);
  t.is(native.linkPeerMac({ ...host, linkNetnsid: -1 }), null, 'a netns going away');
  throwsNative(t, () => native.linkPeerMac({ ...same, linkIfindex: -1 }), 'EINVAL', 'linkPeerMac');
});

test.serial(
  'linkPeerAddrs: the global addresses of a veth peer in another netns, not its link-local ones nor other links',
  (t) => {
    const ns = netnsAdd('nf-nt-pa');
    t.teardown(ns.del);
    run('ip', ['link', 'add', 'nlq0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.name]);
    run('ip', ['-n', ns.name, 'link', 'add', 'other0', 'type', 'veth', 'peer', 'name', 'other1']);
    run('ip', ['-n', ns.name, 'addr', 'add', '10.7.0.9/24', 'dev', 'other0']);
    run('ip', ['-n', ns.name, 'addr', 'add', '10.7.0.5/24', 'dev', 'eth0']);
    run('ip', ['-n', ns.name, 'addr', 'add', 'fd00:7::5/64', 'dev', 'eth0', 'nodad']);
    run('ip', ['-n', ns.name, 'link', 'set', 'eth0', 'up']); // and its fe80:: address
    run('ip', ['addr', 'add', '10.7.0.1/24', 'dev', 'nlq0']);
    const host = native.linkByName('nlq0')!;
    t.deepEqual(native.linkPeerAddrs(host).sort(), ['10.7.0.5', 'fd00:7::5']);
    t.deepEqual(native.linkPeerAddrs(native.linkByName('lo')!), [], 'not a veth');
    t.deepEqual(native.linkPeerAddrs({ ...host, linkNetnsid: -1 }), [], 'a netns going away');
  },
);

interface IpRule {
  priority: number;
  table: string;
  fwmark?: string;
  fwmask?: string;
  protocol?: string;
}
const ipRules = (family: '-4' | '-6'): IpRule[] => JSON.parse(run('ip', [family, '-j', 'rule', 'show'])) as IpRule[];

test.serial('rules: add, idempotent add, list, delete, idempotent delete (IPv4 and IPv6)', (t) => {
  const rule: RouteRule = { family: 4, priority: 100, mark: 0x200, mask: 0xf00, table: 100, protocol: NF_PROTO };
  native.ruleAdd(rule);
  native.ruleAdd(rule);
  t.deepEqual(
    native.ruleList(4).filter((r) => r.priority === 100),
    [rule],
  );
  t.like(
    ipRules('-4').filter((r) => r.priority === 100),
    [{ table: '100', fwmark: '0x200', fwmask: '0xf00' }],
  );
  t.true(
    native.ruleList(4).some((r) => r.priority === 32766 && r.table === 254 && r.mark === undefined),
    'main rule',
  );

  const v6: RouteRule = { family: 6, priority: 101, mark: 0x400, mask: 0x400, table: 1000, protocol: NF_PROTO };
  native.ruleAdd(v6);
  t.deepEqual(
    native.ruleList(6).filter((r) => r.priority === 101),
    [v6],
  );
  t.deepEqual(
    native.ruleList(4).filter((r) => r.priority === 101),
    [],
  );

  native.ruleDelete(rule);
  native.ruleDelete(rule);
  native.ruleDelete(v6);
  t.deepEqual(
    native.ruleList(4).filter((r) => r.priority === 100),
    [],
  );
  t.deepEqual(
    ipRules('-6').filter((r) => r.priority === 101),
    [],
  );
});

interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
}
const ipRoutes = (family: '-4' | '-6', table: number): IpRoute[] =>
  JSON.parse(run('ip', [family, '-j', 'route', 'show', 'table', String(table)])) as IpRoute[];

test.serial('routes: replace, list, replace again, delete, idempotent delete', (t) => {
  run('ip', ['link', 'add', 'nlr0', 'type', 'veth', 'peer', 'name', 'nlr1']);
  run('ip', ['addr', 'add', '10.98.0.1/24', 'dev', 'nlr0']);
  run('ip', ['-6', 'addr', 'add', 'fd00:98::1/64', 'dev', 'nlr0', 'nodad']);
  run('ip', ['link', 'set', 'nlr0', 'up']);
  run('ip', ['link', 'set', 'nlr1', 'up']);
  const oif = native.linkByName('nlr0')!.ifindex;

  const def: Route = { family: 4, table: 100, dst: '0.0.0.0/0', gateway: '10.98.0.2', oif, protocol: NF_PROTO };
  const host: Route = { family: 4, table: 100, dst: '10.244.1.5/32', oif, protocol: NF_PROTO, scope: 253 };
  native.routeReplace(def);
  native.routeReplace(host);
  native.routeReplace(def);
  const listed = native.routeList(4, 100);
  t.is(listed.length, 2);
  t.like(
    listed.find((r) => r.dst === '0.0.0.0/0'),
    { ...def, scope: 0 },
  );
  t.like(
    listed.find((r) => r.dst === '10.244.1.5/32'),
    host,
  );
  t.like(
    ipRoutes('-4', 100).find((r) => r.dst === 'default'),
    { gateway: '10.98.0.2', dev: 'nlr0' },
  );

  native.routeReplace({ ...def, gateway: '10.98.0.3' });
  t.deepEqual(
    native
      .routeList(4, 100)
      .filter((r) => r.dst === '0.0.0.0/0')
      .map((r) => r.gateway),
    ['10.98.0.3'],
  );
  t.deepEqual(native.routeList(4, 101), []);

  const v6: Route = { family: 6, table: 100, dst: 'fd00:1::/64', gateway: 'fd00:98::2', oif, protocol: NF_PROTO };
  native.routeReplace(v6);
  t.like(
    native.routeList(6, 100).find((r) => r.dst === 'fd00:1::/64'),
    v6,
  );

  native.routeDelete(def); // gateway 10.98.0.2 no longer matches: tolerated, nothing removed
  t.is(native.routeList(4, 100).length, 2);
  native.routeDelete({ ...def, gateway: '10.98.0.3' });
  native.routeDelete({ ...def, gateway: '10.98.0.3' });
  native.routeDelete(host);
  native.routeDelete(v6);
  t.deepEqual(native.routeList(4, 100), []);
  t.deepEqual(ipRoutes('-6', 100), []);
});

test.serial('netlink errors carry the kernel errno and the failing call', (t) => {
  const oif = native.linkByName('lo')!.ifindex;
  const e = throwsNative(
    t,
    () => native.routeReplace({ family: 4, table: 100, dst: '10.0.0.0/8', oif: 9999 }),
    'ENODEV',
    'rtnl_route_add',
  );
  t.is(e.message, 'replace route 10.0.0.0/8 table 100: No such device');
  throwsNative(
    t,
    () => native.routeReplace({ family: 4, table: 100, dst: '10.0.0.0/8', gateway: '192.0.2.1', oif }),
    'ENETUNREACH',
    'rtnl_route_add',
  );
  const bad = throwsNative(
    t,
    () => native.routeReplace({ family: 4, table: 100, dst: 'fd00::/8' }),
    'EINVAL',
    'routeReplace',
  );
  t.regex(bad.message, /dst "fd00::\/8" is not an IPv4 address/);
  throwsNative(t, () => native.ruleAdd({ family: 5 as 4, priority: 1, table: 1 }), 'EINVAL', 'ruleAdd');
  throwsNative(t, () => native.ruleAdd({ family: 4, priority: 1 } as RouteRule), 'EINVAL', 'ruleAdd');
  throwsNative(t, () => native.linkByName(1 as unknown as string), 'EINVAL', 'linkByName');
});

test.serial('neighbours and bridge FDB: entries iproute2 added, with their MACs, ports and states', (t) => {
  run('ip', ['link', 'add', 'nbbr', 'type', 'bridge']);
  run('ip', ['link', 'add', 'nbpa', 'type', 'veth', 'peer', 'name', 'nbpb']);
  run('ip', ['link', 'set', 'nbpa', 'master', 'nbbr']);
  for (const l of ['nbbr', 'nbpa', 'nbpb']) run('ip', ['link', 'set', l, 'up']);
  t.teardown(() => {
    run('ip', ['link', 'del', 'nbpa']);
    run('ip', ['link', 'del', 'nbbr']);
  });
  const br = native.linkByName('nbbr')!.ifindex;
  const port = native.linkByName('nbpa')!.ifindex;
  run('ip', ['neigh', 'add', '10.8.0.5', 'lladdr', '0a:00:00:00:08:05', 'dev', 'nbbr', 'nud', 'reachable']);
  run('ip', ['-6', 'neigh', 'add', 'fd00:8::5', 'lladdr', '0a:00:00:00:08:06', 'dev', 'nbbr', 'nud', 'stale']);
  run('ip', ['neigh', 'add', '10.8.0.6', 'dev', 'nbbr', 'nud', 'incomplete']);
  run('bridge', ['fdb', 'add', '0a:00:00:00:08:05', 'dev', 'nbpa', 'master', 'dynamic']);

  const neigh = native.neighList().filter((n) => n.ifindex === br);
  t.deepEqual(
    neigh.find((n) => n.ip === '10.8.0.5'),
    { family: 4, ifindex: br, ip: '10.8.0.5', mac: '0a:00:00:00:08:05', valid: true },
  );
  t.deepEqual(
    neigh.find((n) => n.ip === 'fd00:8::5'),
    { family: 6, ifindex: br, ip: 'fd00:8::5', mac: '0a:00:00:00:08:06', valid: true },
  );
  t.false(
    neigh.some((n) => n.ip === '10.8.0.6'),
    'no MAC, not listed',
  );

  const fdb = native.fdbList().filter((f) => f.masterIfindex === br);
  t.deepEqual(
    fdb.find((f) => f.mac === '0a:00:00:00:08:05'),
    { ifindex: port, masterIfindex: br, mac: '0a:00:00:00:08:05', vlan: 0, local: false, self: false },
  );
  const own = fdb.find((f) => f.mac === native.linkByName('nbpa')!.mac && f.ifindex === port);
  t.true(own?.local, "the port's own address is the bridge's (permanent)");
  t.true(native.fdbList().every((f) => f.mac !== '' && f.ifindex > 0));
});

test.serial('linkList: links added and removed during the dump (an interrupted dump is asked again)', async (t) => {
  const lines = Array.from({ length: 150 }, (_, i) => `link add nld${i} type veth peer name nle${i}\n`).join('');
  execFileSync('ip', ['-force', '-batch', '-'], { input: lines, stdio: ['pipe', 'ignore', 'ignore'] });
  const churn = spawn('ip', ['-force', '-batch', '-'], { stdio: ['pipe', 'ignore', 'ignore'] });
  const exited = new Promise((r) => churn.on('exit', r));
  churn.stdin.end(
    Array.from({ length: 200 }, (_, i) => `link add nlc${i % 50} type veth\nlink del nlc${i % 50}\n`).join(''),
  );
  let dumps = 0;
  let done = false;
  void exited.then(() => (done = true));
  while (!done) {
    const names = native.linkList().map((l) => l.name);
    t.is(names.filter((n) => /^nl[de]\d/.test(n)).length, 300, 'every link that stays, in every dump');
    dumps++;
    await sleep(0);
  }
  t.true(dumps > 1);
  const ip = (JSON.parse(run('ip', ['-j', 'link', 'show'])) as { ifname: string }[]).map((l) => l.ifname).sort();
  t.deepEqual(
    native
      .linkList()
      .map((l) => l.name)
      .sort(),
    ip,
  );
  execFileSync('ip', ['-force', '-batch', '-'], {
    input: Array.from({ length: 150 }, (_, i) => `link del nld${i}\n`).join(''),
    stdio: ['pipe', 'ignore', 'ignore'],
  });
});

test.serial('linkWatch: a burst that overflows the socket is reported, and watching goes on', async (t) => {
  let seen = 0;
  let overflows = 0;
  const names: string[] = [];
  const w = native.linkWatch((ev) => {
    if (ev.type === 'overflow') overflows++;
    if ('link' in ev) names.push(ev.link.name);
    // A slow consumer: the kernel queues the burst meanwhile, past the socket's buffer.
    if (++seen % 200 === 0) {
      const until = Date.now() + 100;
      while (Date.now() < until);
    }
  });
  t.teardown(() => w.close());
  const lines = Array.from(
    { length: 1000 },
    (_, i) => `link add nlo${i} type veth peer name nlp${i}\nlink set nlo${i} up\n`,
  ).join('');
  execFileSync('ip', ['-force', '-batch', '-'], { input: lines, stdio: ['pipe', 'ignore', 'ignore'] });
  await until(() => overflows > 0, 10_000);
  t.true(overflows > 0, 'the lost events are reported');
  run('ip', ['link', 'add', 'nlafter', 'type', 'veth', 'peer', 'name', 'nlafterp']);
  await until(() => names.includes('nlafter'));
  t.true(names.includes('nlafter'), 'a link added after the overflow is still heard of');
  execFileSync('ip', ['-force', '-batch', '-'], {
    input: Array.from({ length: 1000 }, (_, i) => `link del nlo${i}\n`).join(''),
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  run('ip', ['link', 'del', 'nlafter']);
});

test.serial('linkWatch: tc deletions that may take our filter (clsact qdisc, priority 1), and no others', async (t) => {
  const all: LinkEvent[] = [];
  const w = native.linkWatch((ev) => all.push(ev));
  t.teardown(() => w.close());
  const tcEvents = (): LinkEvent[] => all.filter((e) => e.type === 'qdisc-del' || e.type === 'filter-del');
  const tc = (args: string): void => void run('tc', args.split(' '));
  // Events are read on the event loop, after these commands: a marker link says when all are in.
  const settle = async (marker: string): Promise<void> => {
    run('ip', ['link', 'add', marker, 'type', 'veth', 'peer', 'name', `${marker}p`]);
    await until(() => all.some((e) => 'link' in e && e.link.name === marker));
    run('ip', ['link', 'del', marker]);
  };
  run('ip', ['link', 'add', 'nltc0', 'type', 'veth', 'peer', 'name', 'nltc1']);
  const ifindex = native.linkByName('nltc0')!.ifindex;
  tc('qdisc add dev nltc0 clsact');
  tc('filter add dev nltc0 ingress prio 1 u32 match u32 0 0');
  tc('filter add dev nltc0 egress prio 1 u32 match u32 0 0');
  tc('filter add dev nltc0 ingress prio 5 u32 match u32 0 0');
  tc('filter del dev nltc0 ingress prio 5'); // another priority: not ours
  tc('filter del dev nltc0 ingress prio 1');
  tc('filter del dev nltc0 egress prio 1');
  tc('qdisc del dev nltc0 clsact');
  await settle('nltcm0');
  t.deepEqual(tcEvents(), [
    { type: 'filter-del', ifindex, ifname: 'nltc0', dirs: ['ingress'] },
    { type: 'filter-del', ifindex, ifname: 'nltc0', dirs: ['egress'] },
    { type: 'qdisc-del', ifindex, ifname: 'nltc0', dirs: ['ingress', 'egress'] },
  ]);
  all.length = 0;
  tc('qdisc add dev nltc1 ingress');
  tc('qdisc del dev nltc1 ingress'); // not a clsact qdisc
  await settle('nltcm1');
  tc('qdisc add dev nltc0 clsact');
  tc('filter add dev nltc0 ingress prio 1 u32 match u32 0 0');
  run('ip', ['link', 'del', 'nltc0']); // gone: nothing to repair
  await settle('nltcm2');
  t.deepEqual(tcEvents(), []);
});

test.serial(
  'linkWatch: a burst of tc changes it does not report (the agent attaching hooks) overflows nothing',
  async (t) => {
    const pin = pinnedClassifier(t);
    let overflows = 0;
    const names: string[] = [];
    const w = native.linkWatch((ev) => {
      if (ev.type === 'overflow') overflows++;
      if ('link' in ev) names.push(ev.link.name);
    });
    t.teardown(() => w.close());
    run('ip', ['link', 'add', 'nltcb0', 'type', 'veth', 'peer', 'name', 'nltcb1']);
    // execFileSync holds the event loop: nothing is read until the whole burst is queued.
    const lines = Array.from(
      { length: 2000 },
      (_, i) => `filter add dev nltcb0 ingress prio ${i + 2} handle 0x4e46 bpf da pinned ${pin}\n`,
    );
    execFileSync('tc', ['-batch', '-'], { input: `qdisc add dev nltcb0 clsact\n${lines.join('')}` });
    run('ip', ['link', 'add', 'nltcb2', 'type', 'veth', 'peer', 'name', 'nltcb3']);
    await until(() => names.includes('nltcb2'));
    t.true(names.includes('nltcb2'));
    t.is(overflows, 0, 'the tc notifications were dropped in the kernel, not queued');
    run('ip', ['link', 'del', 'nltcb0']);
    run('ip', ['link', 'del', 'nltcb2']);
  },
);

test.serial(
  'linkWatch: a cls_bpf filter added at our priority is reported, ours (and its spare) are not',
  async (t) => {
    const pin = pinnedClassifier(t);
    const all: LinkEvent[] = [];
    const w = native.linkWatch((ev) => all.push(ev));
    t.teardown(() => w.close());
    const bpf = (dir: string, prio: string, handle: string): void =>
      void run('tc', [
        'filter',
        'add',
        'dev',
        'nltca0',
        dir,
        'prio',
        prio,
        'handle',
        handle,
        'bpf',
        'da',
        'pinned',
        pin,
      ]);
    run('ip', ['link', 'add', 'nltca0', 'type', 'veth', 'peer', 'name', 'nltca1']);
    const ifindex = native.linkByName('nltca0')!.ifindex;
    run('tc', ['qdisc', 'add', 'dev', 'nltca0', 'clsact']);
    bpf('ingress', '1', '0x4e46'); // ours
    bpf('ingress', '1', '0x4e47'); // our spare (moving ahead)
    bpf('ingress', '2', '0x9'); // behind ours
    run('tc', ['filter', 'add', 'dev', 'nltca0', 'egress', 'prio', '1', 'u32', 'match', 'u32', '0', '0']); // not cls_bpf
    bpf('ingress', '1', '0x7'); // ahead of ours
    run('ip', ['link', 'add', 'nltcam', 'type', 'veth', 'peer', 'name', 'nltcamp']);
    await until(() => all.some((e) => 'link' in e && e.link.name === 'nltcam'));
    t.deepEqual(
      all.filter((e) => 'dirs' in e),
      [{ type: 'filter-ahead', ifindex, ifname: 'nltca0', dirs: ['ingress'] }],
    );
    run('ip', ['link', 'del', 'nltca0']);
    run('ip', ['link', 'del', 'nltcam']);
  },
);

test.serial('linkWatch: an overflow while the callback runs (the drain meets it, not libuv) is reported', async (t) => {
  let overflows = 0;
  let burst = false;
  const pairs = Array.from({ length: 300 }, (_, i) => i);
  const w = native.linkWatch((ev) => {
    if (ev.type === 'overflow') overflows++;
    if (burst || !('link' in ev) || ev.link.name !== 'nlcb0') return;
    burst = true; // the kernel queues the burst while this callback still runs
    execFileSync('ip', ['-batch', '-'], {
      input: pairs.map((i) => `link add nlcx${i} type veth peer name nlcy${i}\n`).join(''),
    });
  });
  t.teardown(() => w.close());
  run('ip', ['link', 'add', 'nlcb0', 'type', 'veth', 'peer', 'name', 'nlcb1']);
  await until(() => overflows > 0);
  t.true(burst);
  t.true(overflows > 0, 'the lost events are reported');
  execFileSync('ip', ['-force', '-batch', '-'], {
    input: ['nlcb0', ...pairs.map((i) => `nlcx${i}`)].map((n) => `link del ${n}\n`).join(''),
    stdio: ['pipe', 'ignore', 'ignore'],
  });
});
