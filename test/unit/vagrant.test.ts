// What of vagrant/ can be checked without booting VMs (`npm run test:vagrant` boots them):
// the VMs' expectations agree with the reference evaluator on the shared state, and the
// Vagrantfile keeps every VM on isolated networks and wires the scripts that exist.
import test from 'ava';
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const repo = path.resolve(__dirname, '../../..');
const vagrant = path.join(repo, 'vagrant');
const cli = path.join(repo, 'dist/src/cli/main.js');

test('state/expect.txt matches the reference evaluator on state/', async (t) => {
  const lines = fs
    .readFileSync(path.join(vagrant, 'state/expect.txt'), 'utf8')
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter((l) => l);
  t.true(lines.length >= 2);
  const verdicts = new Set<string>();
  const sources = new Set<string>();
  for (const line of lines) {
    const [from, to, port, want] = line.split(/\s+/);
    const { stdout } = await run(process.execPath, [
      cli,
      'trace',
      '--state',
      path.join(vagrant, 'state'),
      '--from',
      from,
      '--to',
      to,
      '--port',
      port,
      '--engine',
      'model',
      '--json',
    ]);
    t.is((JSON.parse(stdout) as { verdict: string }).verdict, want, line);
    verdicts.add(want);
    sources.add(from.split('/')[0] === 'node' ? 'node' : 'pod');
  }
  t.deepEqual([...verdicts].sort(), ['allow', 'deny'], 'expectations test both verdicts');
  t.deepEqual([...sources].sort(), ['node', 'pod'], 'expectations probe pods and a node policy');
});

test('the Vagrantfile defines gw, node1 and node2, emulated, on networks without forwarding', (t) => {
  const vf = fs.readFileSync(path.join(vagrant, 'Vagrantfile'), 'utf8');
  t.regex(vf, /config\.vm\.box = ENV\.fetch\("NETFENCE_BOX"\)/);
  t.regex(vf, /"gw" => "192\.168\.56\.10", "node1" => "192\.168\.56\.11", "node2" => "192\.168\.56\.12"/);
  t.regex(vf, /lv\.driver = "qemu"/);
  t.regex(vf, /lv\.management_network_mode = "none"/);
  t.regex(vf, /libvirt__forward_mode: "none"/);
  t.notRegex(vf, /forward_mode: "(nat|route|open)"/);
});

test('the scripts run.sh calls exist and parse', (t) => {
  const runner = fs.readFileSync(path.join(vagrant, 'run.sh'), 'utf8');
  const scripts = [
    ...new Set([...runner.matchAll(/(?:\/netfence\/)?(vagrant\/[\w/-]+\.sh)/g)].map((m) => m[1])),
  ].sort();
  t.deepEqual(scripts, [
    'vagrant/build-box.sh',
    'vagrant/deps.sh',
    'vagrant/guest/gateway.sh',
    'vagrant/guest/hairpins.sh',
    'vagrant/guest/node.sh',
    'vagrant/guest/probe.sh',
  ]);
  for (const s of [...scripts, 'vagrant/run.sh']) {
    t.notThrows(() => execFileSync('bash', ['-n', path.join(repo, s)]), s);
  }
  const pkg = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  t.regex(pkg.scripts['test:vagrant'], /bash vagrant\/run\.sh/);
  t.regex(fs.readFileSync(path.join(repo, '.ci/run'), 'utf8'), /bash vagrant\/run\.sh/);
});
