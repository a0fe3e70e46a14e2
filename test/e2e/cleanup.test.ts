// `netfence cleanup` on a lab node after its agent stopped (an uninstall): the pinned hooks
// that kept a deny enforcing are gone and real packets pass, also on a veth whose markers
// were lost; other owners' filters stay (a u32 filter beside ours, a foreign program at
// netfence's own handle and priority); the tunnel's rule and route go; the bpffs root and
// the run directory are emptied; a second run is a no-op; and cleanup refuses while an
// agent runs.
import test from 'ava';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { namesFilePath } from '../../src/agent/names-file';
import { DEFAULT_REDIRECT_TABLE } from '../../src/model/config';
import { AgentLab, demoPodsAbc, isolate, labConfig } from './helpers/agent-lab';

const cli = path.resolve(__dirname, '../../src/cli/main.js');
const nativeModule = path.resolve(__dirname, '../../src/datapath/native.js');
const fixture = path.resolve(__dirname, '../../../test/native/fixtures/.output/native_test.bpf.o');

const A_TO_B = { from: 'demo/a', to: 'demo/b', port: '80/TCP' };
const C_TO_A = { from: 'demo/c', to: 'demo/a', port: '80/TCP' };
const FOREIGN_IF = 'nfclforeign';

let lab: AgentLab;

test.before(async () => {
  lab = await AgentLab.up('cleanup', {
    'pods.yaml': demoPodsAbc(),
    'netfence.yaml': labConfig('redirect: { mode: fwmark, uplink: eth0, gateway: 169.254.0.1 }\n'),
    'isolate-b.yaml': isolate('b'),
  });
});
test.after.always(async () => {
  await lab?.down();
});

/** `argv` inside the node's netns (nsenter keeps the host's bpffs and /run, as a DaemonSet pod does). */
function inNode(argv: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync('nsenter', [`--net=/run/netns/${lab.node().netns}`, ...argv], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const cleanup = (...args: string[]): ReturnType<typeof inNode> =>
  inNode([process.execPath, cli, 'cleanup', '--state', lab.stateDir, '--bpffs-root', lab.node().bpffsRoot, ...args]);

const bpftool = (args: string[]): SpawnSyncReturns<string> =>
  spawnSync('bpftool', ['-j', ...args], { encoding: 'utf8' });

const sh = (argv: string[]): Promise<string> => lab.exec(lab.node().netns, argv);

/** A program that is not netfence's at netfence's own handle and priority (addon's tcAttach). */
function attachForeign(): void {
  const script = `const { native } = require(${JSON.stringify(nativeModule)});
const prog = native.openObject(${JSON.stringify(fixture)}, {}).programs().find((p) => p.name === 'nt_classify2');
native.tcAttach(native.linkByName('${FOREIGN_IF}').ifindex, 'ingress', prog.fd, { forceClsact: true });`;
  const r = inNode([process.execPath, '-e', script]);
  if (r.code !== 0) throw new Error(`attach foreign program: ${r.stderr}`);
}

const RP_FILTER = 'net.ipv4.conf.eth0.rp_filter';
const rpFilter = async (): Promise<string> => (await sh(['sysctl', '-n', RP_FILTER])).trim();

test.serial('cleanup refuses while an agent runs, then removes what the stopped agent left', async (t) => {
  await sh(['sysctl', '-qw', `${RP_FILTER}=1`]);
  const { pid } = await lab.startAgent();
  t.is(await rpFilter(), '2', 'the tunnel loosened the uplink');
  t.deepEqual(await lab.probe([A_TO_B, C_TO_A]), ['deny', 'allow']);
  const { bpffsRoot } = lab.node();
  const runDir = path.dirname(namesFilePath(bpffsRoot));
  const table = String(DEFAULT_REDIRECT_TABLE);

  const refused = cleanup();
  t.is(refused.code, 1);
  t.regex(
    refused.stderr,
    new RegExp(`cleanup refused, stop the agent first: .*another netfence agent \\(pid ${pid}\\)`),
  );
  t.deepEqual(await lab.probe([A_TO_B, C_TO_A]), ['deny', 'allow'], 'nothing removed');

  // Other owners: a u32 filter (no action: the packet passes) after ours on b's veth, a foreign program at our handle.
  const vethB = lab.hostIf('demo/b');
  for (const dir of ['ingress', 'egress'])
    await sh([
      'tc',
      'filter',
      'add',
      'dev',
      vethB,
      dir,
      'prio',
      '100',
      'protocol',
      'ip',
      'u32',
      'match',
      'u32',
      '0',
      '0',
      'flowid',
      '1:1',
    ]);
  await sh(['ip', 'link', 'add', FOREIGN_IF, 'type', 'veth', 'peer', 'name', `${FOREIGN_IF}1`]);
  attachForeign();

  await lab.kill('SIGTERM');
  t.deepEqual(await lab.probe([A_TO_B, C_TO_A]), ['deny', 'allow'], 'enforced after the agent stopped');
  // This bpftool (7.1) lists no TCX links per interface: their ids, from the pins.
  const linkPins = fs.readdirSync(path.join(bpffsRoot, 'links')).map((f) => path.join(bpffsRoot, 'links', f));
  t.true(
    linkPins.some((p) => p.endsWith('/eth0-ingress')),
    "the host interface's TCX links",
  );
  const linkIds = linkPins.map((p) => (JSON.parse(bpftool(['link', 'show', 'pinned', p]).stdout) as { id: number }).id);
  const before = await sh(['bpftool', 'net', 'show']);
  t.regex(before, new RegExp(`${vethB}\\(\\d+\\) .*nf_tc_`), "b's filters");
  t.regex(await sh(['ip', 'rule', 'show']), new RegExp(`lookup ${table}`), "the tunnel's rule");
  t.true(fs.existsSync(path.join(runDir, 'names.json')));
  // b's markers lost: its filters are found by the scan.
  for (const f of fs.readdirSync(path.join(bpffsRoot, 'filters')))
    if (f.startsWith(`${vethB}-`)) fs.unlinkSync(path.join(bpffsRoot, 'filters', f));

  const dry = cleanup('--dry-run');
  t.is(dry.code, 0, dry.stderr);
  t.regex(
    dry.stdout,
    new RegExp(
      `would remove ingress filter of ${vethB} \\(priority 1, handle 0x4e46, program \\d+ nf_tc_\\w+, no marker\\)`,
    ),
  );
  t.regex(dry.stdout, /would remove (ingress|egress) hook of eth0\n/);
  t.regex(dry.stdout, /would remove rp_filter of eth0: 2 -> 1\n/);
  t.deepEqual(await lab.probe([A_TO_B, C_TO_A]), ['deny', 'allow'], 'a dry run removes nothing');

  const done = cleanup();
  t.is(done.code, 0, done.stderr);
  t.log(done.stdout);
  t.is(done.stdout, dry.stdout.replaceAll('would remove', 'removed'), 'removes what the dry run listed');
  t.deepEqual(await lab.probe([A_TO_B, C_TO_A]), ['allow', 'allow'], 'the deny no longer holds: real packets pass');

  const after = await sh(['bpftool', 'net', 'show']);
  t.notRegex(after, /nf_tc_/, 'no netfence filter or TCX link is left');
  for (const id of linkIds) t.not(bpftool(['link', 'show', 'id', String(id)]).status, 0, `TCX link ${id} is gone`);
  t.regex(after, new RegExp(`${FOREIGN_IF}\\(\\d+\\) .*nt_classify2`), "a foreign program at netfence's handle stays");
  for (const dir of ['ingress', 'egress'])
    t.regex(await sh(['tc', 'filter', 'show', 'dev', vethB, dir]), /u32/, `the u32 filter on b's ${dir} stays`);
  t.notRegex(await sh(['ip', 'rule', 'show']), new RegExp(`lookup ${table}`), "the tunnel's rule is gone");
  t.is((await sh(['ip', 'route', 'show', 'table', table])).trim(), '', "the tunnel's route is gone");
  t.is(await rpFilter(), '1', "the uplink's rp_filter is back to what it was");
  t.false(fs.existsSync(bpffsRoot), 'the bpffs root is gone with its pins');
  t.false(fs.existsSync(runDir), "the agent's run directory is gone");

  const again = cleanup();
  t.is(again.code, 0, again.stderr);
  t.is(again.stdout, 'nothing to clean up\n', 'a second run is a no-op');
});
