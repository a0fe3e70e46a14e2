// Shared by the native addon tests: the fixture object, bpffs pin dirs, network
// namespaces, packet builders and the NativeError assertion. Everything created here
// is removed in t.teardown, also when the test fails.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { native } from '../../src/datapath/native';
import type { NativeError } from '../../src/datapath/native-api';

export const root = path.resolve(__dirname, '../../..');
const fixtures = path.join(root, 'test/native/fixtures');

/** Builds (if needed) and returns the test BPF object. */
export function fixtureObject(): string {
  execFileSync('make', ['-s', '-C', fixtures], { stdio: 'inherit' });
  return path.join(fixtures, '.output/native_test.bpf.o');
}

let seq = 0;
/** A unique name for this process: prefix-<pid>-<n>. */
export function uniq(prefix: string): string {
  seq += 1;
  return `${prefix}-${process.pid}-${seq}`;
}

/** A fresh bpffs directory, removed (with everything pinned in it) at teardown. */
export function pinDir(t: ExecutionContext): string {
  const dir = path.join('/sys/fs/bpf', uniq('nf-test'));
  fs.mkdirSync(dir);
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The fixture's nt_classify program pinned in a test bpffs directory (what
 *  `tc filter add ... bpf da pinned PATH` takes): its path. */
export function pinnedClassifier(t: ExecutionContext): string {
  const h = native.openObject(fixtureObject(), {});
  t.teardown(() => h.close());
  const pin = `${pinDir(t)}/prog`;
  native.pin(h.programs().find((p) => p.name === 'nt_classify')!.fd, pin);
  return pin;
}

export function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Exit status of a command (0 = success), without throwing. */
export function status(cmd: string, args: string[]): number {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: 20_000 });
    return 0;
  } catch (e) {
    return (e as { status?: number }).status ?? -1;
  }
}

/** A named netns (ip netns add), deleted by the returned function, at the latest on exit. */
export function netnsAdd(prefix: string): { name: string; del: () => void } {
  const name = uniq(prefix);
  run('ip', ['netns', 'add', name]);
  const del = (): void => {
    process.removeListener('exit', del);
    status('ip', ['netns', 'del', name]);
  };
  process.once('exit', del);
  return { name, del };
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

export function u64(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
}

/** LPM key of the fixture's nt_verdicts trie: u32 prefixlen + 4 address bytes. */
export function lpmKey(cidr: string): Buffer {
  const [addr, len] = cidr.split('/');
  const b = Buffer.alloc(8);
  b.writeUInt32LE(Number(len ?? 32));
  addr.split('.').forEach((o, i) => b.writeUInt8(Number(o), 4 + i));
  return b;
}

function ipv4Checksum(h: Buffer): number {
  let sum = 0;
  for (let i = 0; i < h.length; i += 2) sum += h.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Ethernet + IPv4 + UDP with a small payload. */
export function udpPacket(saddr: string, daddr: string, dport: number): Buffer {
  const eth = Buffer.alloc(14);
  eth.writeUInt16BE(0x0800, 12);
  const payload = Buffer.from('netfence');
  const ip = Buffer.alloc(20);
  ip.writeUInt8(0x45, 0);
  ip.writeUInt16BE(20 + 8 + payload.length, 2);
  ip.writeUInt8(64, 8);
  ip.writeUInt8(17, 9);
  saddr.split('.').forEach((o, i) => ip.writeUInt8(Number(o), 12 + i));
  daddr.split('.').forEach((o, i) => ip.writeUInt8(Number(o), 16 + i));
  ip.writeUInt16BE(ipv4Checksum(ip), 10);
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(40000, 0);
  udp.writeUInt16BE(dport, 2);
  udp.writeUInt16BE(8 + payload.length, 4);
  return Buffer.concat([eth, ip, udp, payload]);
}

/** Asserts fn throws a NativeError with this code and syscall; returns it. */
export function throwsNative(t: ExecutionContext, fn: () => unknown, code: string, syscall: string): NativeError {
  const err = t.throws(fn) as NativeError;
  t.true(err instanceof Error);
  t.is(err.code, code, err.message);
  t.is(err.syscall, syscall, err.message);
  t.is(typeof err.errno, 'number');
  t.regex(err.message, /^[a-z][\w -]*[^:]*: \S/);
  return err;
}
