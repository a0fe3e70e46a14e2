// The install-cni init container's work, in temporary directories: the plugin (executable
// and node fallback) lands in the bin dir and runs from there; it joins the primary
// network's chain exactly once.
import test from 'ava';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { addToChain, installBinary, primaryConfig, PLUGIN_TYPE, uninstall } from '../../src/cni/install';

const dist = path.resolve(__dirname, '../..');
const entry = { type: PLUGIN_TYPE, agentSocket: '/run/netfence/agent.sock', failOpen: false };

function tmpdir(t: { teardown(fn: () => void): void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'nf-cni-install-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

test('the installed executable falls back to the plugin on its own node', async (t) => {
  const bin = tmpdir(t);
  installBinary(bin, dist);
  const executable = path.join(bin, PLUGIN_TYPE);
  t.is(fs.statSync(executable).mode & 0o777, 0o755);
  t.not(fs.readFileSync(executable).subarray(0, 4).toString('latin1'), '#!/b', 'compiled, not a script');
  const out = await new Promise<string>((resolve, reject) => {
    // No agent at that socket: the bundle answers. The runtime's NODE_OPTIONS is not the
    // plugin's: this one would stop node from starting.
    const env = { CNI_COMMAND: 'VERSION', NODE_OPTIONS: '--require /nonexistent/hook.js' };
    const child = execFile(executable, [], { env }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
    child.stdin!.end(`{"cniVersion":"1.0.0","agentSocket":${JSON.stringify(path.join(bin, 'nobody.sock'))}}`);
  });
  t.true((JSON.parse(out) as { supportedVersions: string[] }).supportedVersions.includes('1.1.0'));
  installBinary(bin, dist); // rerun: same result
  t.deepEqual(
    fs.readdirSync(path.join(bin, 'netfence')).sort(),
    ['netfence-cni.js', 'node'],
    'one bundled file besides node',
  );
});

test('joins the first conflist once, keeping the other plugins in order', (t) => {
  const dir = tmpdir(t);
  const primary = {
    cniVersion: '1.0.0',
    name: 'k8s-pod-network',
    plugins: [
      { type: 'calico', mtu: 1450 },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
  fs.writeFileSync(path.join(dir, '10-calico.conflist'), JSON.stringify(primary));
  fs.writeFileSync(path.join(dir, '99-other.conflist'), JSON.stringify({ ...primary, name: 'other' }));
  const file = primaryConfig(dir)!;
  t.is(path.basename(file), '10-calico.conflist');
  addToChain(file, entry);
  addToChain(file, entry);
  const got = JSON.parse(fs.readFileSync(file, 'utf8')) as typeof primary;
  t.deepEqual(
    got.plugins.map((p) => p.type),
    ['calico', 'portmap', PLUGIN_TYPE],
  );
  t.deepEqual(got.plugins[0], primary.plugins[0]);
  t.is((JSON.parse(fs.readFileSync(path.join(dir, '99-other.conflist'), 'utf8')) as typeof primary).plugins.length, 2);
});

test('a single-plugin .conf becomes a .conflist with netfence-cni chained', (t) => {
  const dir = tmpdir(t);
  fs.writeFileSync(
    path.join(dir, '10-bridge.conf'),
    JSON.stringify({ cniVersion: '0.4.0', name: 'br', type: 'bridge', bridge: 'cni0' }),
  );
  const out = addToChain(primaryConfig(dir)!, entry);
  t.is(path.basename(out), '10-bridge.conflist');
  t.false(fs.existsSync(path.join(dir, '10-bridge.conf')));
  t.deepEqual(JSON.parse(fs.readFileSync(out, 'utf8')), {
    cniVersion: '0.4.0',
    name: 'br',
    plugins: [{ type: 'bridge', bridge: 'cni0' }, entry],
  });
});

test('unreadable configs are named in the error', (t) => {
  const dir = tmpdir(t);
  const f = path.join(dir, '10-bad.conflist');
  fs.writeFileSync(f, '{not json');
  t.throws(() => addToChain(f, entry), { message: new RegExp(`^read CNI config ${f}: `) });
});

test('uninstall takes netfence-cni out of every chain, then removes its files; a rerun changes nothing', (t) => {
  const bin = tmpdir(t);
  const dir = tmpdir(t);
  installBinary(bin, dist);
  fs.writeFileSync(path.join(bin, 'bridge'), 'theirs');
  const primary = { cniVersion: '1.0.0', name: 'k8s', plugins: [{ type: 'flannel' }, { type: 'portmap' }] };
  fs.writeFileSync(path.join(dir, '10-flannel.conflist'), JSON.stringify(primary));
  const file = addToChain(path.join(dir, '10-flannel.conflist'), entry);
  fs.writeFileSync(path.join(dir, '20-broken.conflist'), '{not json');
  const other = JSON.stringify({ ...primary, name: 'other' });
  fs.writeFileSync(path.join(dir, '30-other.conflist'), other);

  t.deepEqual(uninstall(bin, dir), [file]);
  t.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), primary, 'the other plugins stay, in order');
  t.is(fs.readFileSync(path.join(dir, '30-other.conflist'), 'utf8'), other, 'a chain without it is not rewritten');
  t.is(fs.readFileSync(path.join(dir, '20-broken.conflist'), 'utf8'), '{not json');
  t.deepEqual(fs.readdirSync(bin), ['bridge'], "netfence-cni and its fallback gone, others' plugins stay");
  t.deepEqual(uninstall(bin, dir), [], 'a rerun changes nothing');
});
