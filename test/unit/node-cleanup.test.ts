// planCleanup on plain directories and a fake addon: the order of the steps, what is never
// taken (other owners' programs at netfence's handle, rules and routes of other protocols,
// files that are not netfence's, a socket someone serves), and a failed step not stopping
// the others.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { planCleanup, runCleanup } from '../../src/agent/node-cleanup';
import { namesFilePath } from '../../src/agent/names-file';
import type { NativeAddon, Route, RouteRule, TcFilter } from '../../src/datapath/native-api';
import { NF_RT_PROTO } from '../../src/redirect/tunnel';

interface Calls {
  calls: string[];
}

/** The addon calls planCleanup and its steps make, recorded; eth0 (2) and veth1 (3). */
function fakeAddon(opts: {
  filters: Record<string, TcFilter[]>;
  rules: RouteRule[];
  routes: Route[];
}): NativeAddon & Calls {
  const calls: string[] = [];
  const fake = {
    calls,
    linkList: () => [
      { name: 'eth0', ifindex: 2 },
      { name: 'veth1', ifindex: 3 },
    ],
    tcFilters: (ifindex: number, dir: string) => opts.filters[`${ifindex}-${dir}`] ?? [],
    tcFilterDelete: (ifindex: number, dir: string, priority: number, handle: number) =>
      calls.push(`tcFilterDelete ${ifindex} ${dir} ${priority} 0x${handle.toString(16)}`),
    tcDetach: (ifindex: number, dir: string) => calls.push(`tcDetach ${ifindex} ${dir}`),
    unpin: (p: string) => {
      calls.push(`unpin ${path.basename(p)}`);
      fs.unlinkSync(p);
    },
    ruleList: (family: number) => opts.rules.filter((r) => r.family === family),
    ruleDelete: (r: RouteRule) => calls.push(`ruleDelete ${r.priority}`),
    routeList: (family: number, table: number) => opts.routes.filter((r) => r.family === family && r.table === table),
    routeDelete: (r: Route) => calls.push(`routeDelete ${r.dst} ${r.table}`),
  };
  return fake as unknown as NativeAddon & Calls;
}

function tmp(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nf-cleanup-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function touch(file: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, '');
}

/** A unix socket left by a killed process (no one serves it). */
function staleSocket(file: string): void {
  const script = `require('net').createServer().listen(${JSON.stringify(file)}, () => process.kill(process.pid, 'SIGKILL'))`;
  spawnSync(process.execPath, ['-e', script]);
  if (!fs.lstatSync(file).isSocket()) throw new Error(`stale socket ${file}: not made`);
}

test("hooks, then rules and routes, then pins, then the run files; only what is netfence's", async (t) => {
  const base = tmp(t);
  const root = path.join(base, 'bpf');
  const runDir = path.join(base, 'run');
  for (const f of ['nf_config', 'nf_ct', 'links/eth0-ingress', 'filters/veth1-egress', 'progs/abc/nf_tc_ingress'])
    touch(path.join(root, f));
  const names = namesFilePath(root, runDir);
  touch(names);
  staleSocket(path.join(path.dirname(names), 'agent.sock'));
  const addon = fakeAddon({
    filters: {
      // veth1 ingress: no marker, netfence's program; eth0 egress: someone else's at our handle.
      '3-ingress': [
        { priority: 1, handle: 0x4e46, progId: 7, progName: 'nf_tc_ingress' },
        { priority: 1, handle: 0x4e47, progId: 10, progName: 'nf_tc_ingress' }, // a move ahead's spare
      ],
      '2-egress': [{ priority: 1, handle: 0x4e46, progId: 8, progName: 'their_prog' }],
      '3-egress': [{ priority: 1, handle: 0x4e46, progId: 9, progName: 'nf_tc_egress' }], // has its marker
    },
    rules: [
      { family: 4, priority: 1000, mark: 0x4e46, mask: 0x4e46, table: 20038, protocol: NF_RT_PROTO },
      { family: 4, priority: 500, table: 100 },
    ],
    routes: [
      { family: 4, table: 20038, dst: '0.0.0.0/0', gateway: '169.254.0.1', protocol: NF_RT_PROTO },
      { family: 4, table: 20038, dst: '10.0.0.0/8', protocol: 3 },
      { family: 6, table: 20038, dst: '::/0', protocol: NF_RT_PROTO }, // rule gone: the configured table
    ],
  });

  const steps = await planCleanup(addon, { bpffsRoot: root, tunnelTable: 20038, runDir });
  t.deepEqual(
    steps.map((s) => s.what),
    [
      'ingress hook of eth0',
      'egress hook of veth1',
      'ingress filter of veth1 (priority 1, handle 0x4e46, program 7 nf_tc_ingress, no marker)',
      'ingress filter of veth1 (priority 1, handle 0x4e47, program 10 nf_tc_ingress, no marker)',
      'ip rule ipv4 priority 1000 fwmark 0x4e46/0x4e46 table 20038',
      'route 0.0.0.0/0 via 169.254.0.1 table 20038',
      'route ::/0 table 20038',
      `pin ${root}/nf_config`,
      `pin ${root}/nf_ct`,
      `pin ${root}/progs/abc/nf_tc_ingress`,
      `directory ${root}/progs/abc`,
      `directory ${root}/progs`,
      `directory ${root}/links`,
      `directory ${root}/filters`,
      `directory ${root}`,
      `file ${names}`,
      `file ${path.dirname(names)}/agent.sock`,
      `directory ${path.dirname(names)}`,
    ],
  );
  t.deepEqual(
    runCleanup(steps, () => undefined),
    [],
  );
  t.deepEqual(addon.calls, [
    'tcDetach 2 ingress',
    'unpin eth0-ingress',
    'tcDetach 3 egress',
    'unpin veth1-egress',
    'tcFilterDelete 3 ingress 1 0x4e46',
    'tcFilterDelete 3 ingress 1 0x4e47',
    'ruleDelete 1000',
    'routeDelete 0.0.0.0/0 20038',
    'routeDelete ::/0 20038',
  ]);
  t.false(fs.existsSync(root));
  t.false(fs.existsSync(path.dirname(names)));
});

test("a root holding others' files and a served socket stay; a failed step does not stop the rest", async (t) => {
  const base = tmp(t);
  const root = path.join(base, 'bpf');
  const runDir = path.join(base, 'run');
  touch(path.join(root, 'nf_config'));
  touch(path.join(root, 'someone_elses_map'));
  touch(path.join(root, 'staging', 'nf_ct'));
  const sock = path.join(path.dirname(namesFilePath(root, runDir)), 'agent.sock');
  fs.mkdirSync(path.dirname(sock), { recursive: true });
  const server = net.createServer().listen(sock);
  await new Promise((r) => server.once('listening', r));
  t.teardown(() => server.close());
  const addon = fakeAddon({ filters: {}, rules: [], routes: [] });

  const steps = await planCleanup(addon, { bpffsRoot: root, tunnelTable: 20038, runDir });
  t.deepEqual(
    steps.map((s) => s.what),
    [`pin ${root}/nf_config`, `pin ${root}/staging/nf_ct`, `directory ${root}/staging`],
  );
  fs.unlinkSync(path.join(root, 'nf_config')); // gone meanwhile: that step fails
  const done: string[] = [];
  const failed = runCleanup(steps, (s) => done.push(s.what));
  t.is(failed.length, 1);
  t.regex(failed[0], /^pin .*nf_config: ENOENT/);
  t.deepEqual(done, [`pin ${root}/staging/nf_ct`, `directory ${root}/staging`]);
  t.true(fs.existsSync(path.join(root, 'someone_elses_map')));
  t.true(fs.existsSync(sock), 'a served socket stays');
});

test('nothing of netfence on the node: no step', async (t) => {
  const base = tmp(t);
  const steps = await planCleanup(fakeAddon({ filters: {}, rules: [], routes: [] }), {
    bpffsRoot: path.join(base, 'absent'),
    tunnelTable: 20038,
    runDir: path.join(base, 'run'),
  });
  t.deepEqual(steps, []);
});
