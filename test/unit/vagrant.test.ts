// What of vagrant/ can be checked without a hypervisor: the VMs' expectations agree with
// the reference evaluator on the shared state, and the Vagrantfile wires the scripts that
// exist (and parse) to the machines it promises.
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
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  t.true(lines.length >= 2);
  const verdicts = new Set<string>();
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
  }
  t.deepEqual([...verdicts].sort(), ['allow', 'deny'], 'expectations test both verdicts');
});

test('the Vagrantfile defines gw, node1 and node2 on Debian 12 and runs the CI set-up', (t) => {
  const vf = fs.readFileSync(path.join(vagrant, 'Vagrantfile'), 'utf8');
  t.regex(vf, /config\.vm\.box = "debian\/bookworm64"/);
  t.regex(vf, /define "gw"/);
  t.regex(vf, /name: "node1"/);
  t.regex(vf, /name: "node2"/);
  t.regex(vf, /private_network/);
  t.regex(vf, /bash \/netfence\/scripts\/setup\.sh/);
  t.true(fs.existsSync(path.join(repo, 'scripts/setup.sh')));
  const scripts = [...vf.matchAll(/path: "([^"]+)"/g)].map((m) => m[1]);
  t.deepEqual(scripts.sort(), ['provision/cross-node.sh', 'provision/gateway.sh', 'provision/node.sh']);
  for (const s of scripts) {
    t.notThrows(() => execFileSync('bash', ['-n', path.join(vagrant, s)]), s);
  }
  t.regex(fs.readFileSync(path.join(vagrant, 'README.md'), 'utf8'), /cannot\s+run there/);
});
