// The agent's process-level guards on the real kernel: the bpffs root lock (flock on the
// directory, holder named from /proc/locks), the bpffs check and mount (in a private
// mount namespace: the root namespace's mounts stay as they are), and the stop-signal
// deadline that holds while the JS thread is blocked.
import test from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { flockHolder, lockBpffsRoot } from '../../src/agent/instance-lock';
import { ensureBpffsRoot } from '../../src/datapath/bpffs';
import { loadDatapath } from '../../src/datapath/loader';
import { addonPath, native } from '../../src/datapath/native';
import { pinDir, throwsNative, uniq } from './helpers';

const exited = (child: ChildProcess): Promise<{ code: number | null; ms: number }> => {
  const start = Date.now();
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, ms: Date.now() - start })));
};

async function until(what: string, ok: () => boolean, timeoutMs = 5000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !ok(); await new Promise((r) => setTimeout(r, 20))) {
    if (Date.now() > deadline) throw new Error(`wait for ${what}: timed out`);
  }
}

test("the bpffs root lock excludes a second holder and names the first one's pid", async (t) => {
  const dir = pinDir(t);
  const holder = spawn(
    process.execPath,
    ['-e', `require(${JSON.stringify(addonPath)}).flockExclusive(${JSON.stringify(dir)}); setInterval(() => {}, 1000)`],
    { stdio: 'ignore' },
  );
  t.teardown(() => holder.kill('SIGKILL'));
  await until('the flock holder', () => flockHolder(dir) !== undefined);
  t.is(flockHolder(dir), holder.pid);
  t.throws(() => lockBpffsRoot(native, dir), {
    message: `lock bpffs root ${dir}: another netfence agent (pid ${holder.pid}) enforces from it; one agent per bpffs root`,
  });

  const gone = exited(holder);
  holder.kill('SIGKILL'); // the kernel drops the lock with its last holder
  await gone;
  const fd = lockBpffsRoot(native, dir);
  t.is(flockHolder(dir), process.pid);
  throwsNative(t, () => native.flockExclusive(dir), 'EAGAIN', 'flock'); // one lock per root, also in-process
  native.closeFd(fd);
  t.is(flockHolder(dir), undefined);
});

test('a bpffs root under a bpffs is created level by level', (t) => {
  const dir = pinDir(t);
  t.deepEqual(ensureBpffsRoot(path.join(dir, 'a/b/root')), {});
  t.true(fs.statSync(path.join(dir, 'a/b/root')).isDirectory());
});

test("a root whose parent is no bpffs fails at once naming what to mount (Node's recursive mkdir spins there)", (t) => {
  // sysfs answers mkdir with ENOENT under an existing directory: what `ip netns exec` leaves at /sys/fs/bpf.
  const onSysfs = `/sys/kernel/${uniq('nf-root')}`;
  const message = `bpffs root ${onSysfs}: /sys/kernel is sysfs, not a bpffs: mount one first: mount -t bpf bpf /sys/kernel`;
  t.throws(() => ensureBpffsRoot(onSysfs), { message });
  t.throws(
    () => loadDatapath(native, { bpffsRoot: onSysfs }),
    { message },
    'the loader checks before it creates anything',
  );

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nf-bpffs-'));
  t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
  fs.writeFileSync(path.join(tmp, 'file'), '');
  let mounts = 0;
  const mount = (): void => void mounts++;
  t.throws(() => ensureBpffsRoot(path.join(tmp, 'root'), { mount }), {
    message: new RegExp(`${tmp} is not empty \\(no mount over files\\): mount one first: mount -t bpf bpf ${tmp}$`),
  });
  t.throws(() => ensureBpffsRoot(path.join(tmp, 'missing/root'), { mount }), {
    message: new RegExp(`: create ${tmp}/missing and mount one first`),
  });
  t.is(mounts, 0, 'never mounted over files or over a missing directory');
});

test('a hidden /sys/fs/bpf gets a bpffs mounted in a private mount namespace; the root namespace keeps its mounts', (t) => {
  // Network namespace files under /run/netns come and go with the tests running beside this one.
  const mountinfo = (): string =>
    fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .filter((l) => !l.includes(' /run/netns/'))
      .join('\n');
  const before = mountinfo();
  // unshare -m makes a private mount namespace; umount there shows sysfs's empty /sys/fs/bpf, as `ip netns exec` does.
  const script = `
    const fs = require('fs');
    const { ensureBpffsRoot } = require(${JSON.stringify(require.resolve('../../src/datapath/bpffs'))});
    const native = require(${JSON.stringify(addonPath)});
    const out = ensureBpffsRoot('/sys/fs/bpf/netfence', { mount: (d) => native.mountBpffs(d) });
    console.log(JSON.stringify({ ...out, type: Number(fs.statfsSync('/sys/fs/bpf/netfence').type), root: fs.statSync('/sys/fs/bpf/netfence').isDirectory() }));`;
  const hidden = (...argv: string[]) =>
    spawnSync(
      'unshare',
      [
        '--mount',
        '--propagation',
        'private',
        'sh',
        '-c',
        'umount -l /sys/fs/bpf && exec "$@"',
        'sh',
        ...argv,
        process.execPath,
        '-e',
        script,
      ],
      {
        encoding: 'utf8',
        timeout: 20_000,
      },
    );
  const r = hidden();
  t.is(r.status, 0, r.stderr);
  t.deepEqual(JSON.parse(r.stdout), { mounted: '/sys/fs/bpf', type: 0xcafe4a11, root: true });
  t.is(mountinfo(), before);

  // Without CAP_SYS_ADMIN the mount is refused: the error says what to mount.
  const denied = hidden('setpriv', '--inh-caps=-sys_admin', '--bounding-set=-sys_admin');
  t.not(denied.status, 0);
  t.regex(
    denied.stderr,
    /bpffs root \/sys\/fs\/bpf\/netfence: \/sys\/fs\/bpf is sysfs, not a bpffs, and mounting one failed \(mount bpffs at \/sys\/fs\/bpf: Operation not permitted\): mount one first: mount -t bpf bpf \/sys\/fs\/bpf/,
  );
});

/** A child that arms the deadline behind a JS SIGTERM handler, then idles or blocks its JS thread. */
function signalChild(mode: 'idle' | 'busy'): ChildProcess {
  const script = `
    const native = require(${JSON.stringify(addonPath)});
    process.on('SIGTERM', () => { console.log('js handler'); process.exit(0); });
    native.exitAfterSignal(1500);
    console.log('ready');
    if (${JSON.stringify(mode)} === 'busy') for (;;) {}
    setInterval(() => {}, 1000);`;
  return spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
}

async function stopAfterReady(
  child: ChildProcess,
): Promise<{ code: number | null; ms: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d));
  child.stderr!.on('data', (d: Buffer) => (stderr += d));
  await until('the child to arm its deadline', () => stdout.includes('ready'));
  const done = exited(child);
  child.kill('SIGTERM');
  return { ...(await done), stdout, stderr };
}

test('SIGTERM ends a process whose JS thread is blocked within 2 s; an idle one runs its JS handler', async (t) => {
  const busy = signalChild('busy');
  t.teardown(() => busy.kill('SIGKILL'));
  const b = await stopAfterReady(busy);
  t.is(b.code, 128 + os.constants.signals.SIGTERM);
  t.true(b.ms < 2000, `exited ${b.ms} ms after SIGTERM`);
  t.regex(b.stderr, /still running after the stop signal's deadline/);

  const idle = signalChild('idle');
  t.teardown(() => idle.kill('SIGKILL'));
  const i = await stopAfterReady(idle);
  t.is(i.code, 0);
  t.true(i.ms < 1000, `exited ${i.ms} ms after SIGTERM`);
  t.regex(i.stdout, /js handler/);
  t.notRegex(i.stderr, /deadline/);
});
