// progTestRun: a tc program's verdict follows packet content and map contents; data,
// context and repeat come back as the kernel reports them.
import test from 'ava';
import { native } from '../../src/datapath/native';
import type { BpfObjectHandle } from '../../src/datapath/native-api';
import { fixtureObject, lpmKey, throwsNative, u32, udpPacket } from './helpers';

const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
const SKB_CTX_SIZE = 192; // sizeof(struct __sk_buff)
const SKB_MARK_OFFSET = 8;

function load(t: { teardown(fn: () => void): void }): { h: BpfObjectHandle; prog: number; map: (n: string) => number } {
  const h = native.openObject(fixtureObject(), {});
  t.teardown(() => h.close());
  const prog = h.programs().find((p) => p.name === 'nt_classify')!.fd;
  return { h, prog, map: (n) => h.maps().find((m) => m.name === n)!.fd };
}

test('verdict depends on packet content and on the map', (t) => {
  const { prog, map } = load(t);
  const dns = udpPacket('10.0.0.2', '10.0.0.1', 53);
  const discard = udpPacket('10.0.0.2', '10.0.0.1', 9);
  t.is(native.progTestRun(prog, { data: dns }).retval, TC_ACT_OK);
  t.is(native.progTestRun(prog, { data: discard }).retval, TC_ACT_SHOT);

  native.mapUpdate(map('nt_verdicts'), lpmKey('10.0.0.0/8'), u32(TC_ACT_SHOT));
  t.is(native.progTestRun(prog, { data: dns }).retval, TC_ACT_SHOT);
  native.mapUpdate(map('nt_verdicts'), lpmKey('10.0.0.1/32'), u32(TC_ACT_OK));
  t.is(native.progTestRun(prog, { data: discard }).retval, TC_ACT_OK, 'a longer prefix overrides');
  t.is(native.progTestRun(prog, { data: udpPacket('10.0.0.1', '10.0.0.7', 53) }).retval, TC_ACT_SHOT);
});

test('data, context, repeat and duration come back', (t) => {
  const { prog, map } = load(t);
  const pkt = udpPacket('10.0.0.2', '10.0.0.1', 53);
  const ctx = Buffer.alloc(SKB_CTX_SIZE);
  ctx.writeUInt32LE(7, SKB_MARK_OFFSET);
  const r = native.progTestRun(prog, { data: pkt, ctx, repeat: 5 });
  t.is(r.retval, TC_ACT_OK);
  t.deepEqual(r.data, pkt, 'data out trimmed to the packet');
  t.is(r.ctx!.length, SKB_CTX_SIZE);
  t.is(r.ctx!.readUInt32LE(SKB_MARK_OFFSET), 7);
  t.true(r.duration >= 0);
  const perCpu = native.mapLookup(map('nt_counts'), u32(TC_ACT_OK))!;
  let total = 0n;
  for (let i = 0; i < perCpu.length; i += 8) total += perCpu.readBigUInt64LE(i);
  t.is(total, 5n, 'the program ran repeat times');
  t.is(native.progTestRun(prog, { data: pkt }).ctx, undefined);
});

test('test run errors', (t) => {
  const { prog } = load(t);
  throwsNative(
    t,
    () => native.progTestRun(987654, { data: udpPacket('1.1.1.1', '2.2.2.2', 1) }),
    'EBADF',
    'bpf_prog_test_run_opts',
  );
  const e = throwsNative(
    t,
    () => native.progTestRun(prog, { data: Buffer.alloc(4) }),
    'EINVAL',
    'bpf_prog_test_run_opts',
  );
  t.regex(e.message, /^test run program fd \d+: Invalid argument$/);
  throwsNative(
    t,
    () => native.progTestRun(prog, { data: udpPacket('1.1.1.1', '2.2.2.2', 1), dataOutSize: 10 }),
    'ENOSPC',
    'bpf_prog_test_run_opts',
  );
  throwsNative(t, () => native.progTestRun(prog, {} as never), 'EINVAL', 'progTestRun');
});

test('run stats: the kernel counts runs and their time while an enableRunStats fd is open', (t) => {
  const { h, prog } = load(t);
  const id = h.programs().find((p) => p.name === 'nt_classify')!.id;
  const before = native.progRunStats(id);
  const fd = native.enableRunStats();
  try {
    native.progTestRun(prog, { data: udpPacket('10.0.0.2', '10.0.0.1', 53), repeat: 100 });
  } finally {
    native.closeFd(fd);
  }
  const after = native.progRunStats(id);
  t.is(after.runCnt - before.runCnt, 100, 'every repeat counted');
  t.true(after.runTimeNs > before.runTimeNs, 'and timed');
  const err = throwsNative(t, () => native.progRunStats(0x7ffffff0), 'ENOENT', 'bpf_prog_get_fd_by_id');
  t.regex(err.message, /^read run stats of program 2147483632: /);
});
