// Map operations: single and batch updates/deletes, per-CPU values, LPM longest match,
// key walks, standalone maps, pinning, and the errors each can raise.
import test from 'ava';
import path from 'node:path';
import { native } from '../../src/datapath/native';
import { fixtureObject, lpmKey, pinDir, throwsNative, u32, u64 } from './helpers';

const HASH = 1;
const ARRAY = 2;
const PERCPU_HASH = 5;
const BPF_NOEXIST = 1;

const obj = fixtureObject();

function hashMap(t: { teardown(fn: () => void): void }, max = 4): number {
  const fd = native.mapCreate(HASH, 'nt_test_hash', 4, 8, max, 0);
  t.teardown(() => native.closeFd(fd));
  return fd;
}

const sortedKeys = (fd: number): number[] =>
  native
    .mapKeys(fd)
    .map((k) => k.readUInt32LE())
    .sort((a, b) => a - b);

test('update, lookup, delete and flags on a hash map', (t) => {
  const fd = hashMap(t);
  t.is(native.mapLookup(fd, u32(1)), null);
  native.mapUpdate(fd, u32(1), u64(11n));
  t.deepEqual(native.mapLookup(fd, u32(1)), u64(11n));
  const e = throwsNative(t, () => native.mapUpdate(fd, u32(1), u64(12n), BPF_NOEXIST), 'EEXIST', 'bpf_map_update_elem');
  t.is(e.message, 'update map nt_test_hash: File exists');
  t.true(native.mapDelete(fd, u32(1)));
  t.false(native.mapDelete(fd, u32(1)));
  t.is(native.mapLookup(fd, u32(1)), null);
});

test('a full map reports E2BIG naming the map', (t) => {
  const fd = hashMap(t, 2);
  native.mapUpdate(fd, u32(1), u64(1n));
  native.mapUpdate(fd, u32(2), u64(2n));
  const e = throwsNative(t, () => native.mapUpdate(fd, u32(3), u64(3n)), 'E2BIG', 'bpf_map_update_elem');
  t.is(e.message, 'update map nt_test_hash: Argument list too long');
  const b = throwsNative(t, () => native.mapUpdateBatch(fd, [u32(4)], [u64(4n)]), 'E2BIG', 'bpf_map_update_batch');
  t.regex(b.message, /^batch update map nt_test_hash: /);
});

test('batch update, key walk and batch delete skipping absent keys', (t) => {
  const fd = hashMap(t, 8);
  native.mapUpdateBatch(fd, [u32(1), u32(2), u32(3)], [u64(10n), u64(20n), u64(30n)]);
  t.deepEqual(sortedKeys(fd), [1, 2, 3]);
  t.deepEqual(native.mapLookup(fd, u32(2)), u64(20n));
  t.is(native.mapDeleteBatch(fd, [u32(1), u32(99), u32(2)]), 2);
  t.deepEqual(sortedKeys(fd), [3]);
  t.is(native.mapDeleteBatch(fd, []), 0);
  native.mapUpdateBatch(fd, [], []);
  t.deepEqual(native.mapKeys(hashMap(t)), []);
});

test('batch update and delete of packed keys and values (elements back to back)', (t) => {
  const fd = hashMap(t, 8);
  native.mapUpdateBatch(fd, Buffer.concat([u32(1), u32(2), u32(3)]), Buffer.concat([u64(10n), u64(20n), u64(30n)]));
  t.deepEqual(sortedKeys(fd), [1, 2, 3]);
  t.deepEqual(native.mapLookup(fd, u32(3)), u64(30n));
  t.is(native.mapDeleteBatch(fd, Buffer.concat([u32(1), u32(99), u32(2)])), 2);
  t.deepEqual(sortedKeys(fd), [3]);
  // A length that is no whole number of elements, or counts that differ, is refused.
  const e = throwsNative(
    t,
    () => native.mapUpdateBatch(fd, Buffer.alloc(6), Buffer.alloc(8)),
    'EINVAL',
    'mapUpdateBatch',
  );
  t.regex(e.message, /keys is 6 bytes, not a multiple of 4/);
  throwsNative(
    t,
    () => native.mapUpdateBatch(fd, Buffer.concat([u32(4), u32(5)]), u64(4n)),
    'EINVAL',
    'mapUpdateBatch',
  );
  throwsNative(t, () => native.mapDeleteBatch(fd, Buffer.alloc(3)), 'EINVAL', 'mapDeleteBatch');
  t.deepEqual(sortedKeys(fd), [3]);
});

test('per-CPU values span every possible CPU, 8-byte aligned', (t) => {
  const cpus = native.possibleCpus();
  t.true(cpus >= 1);
  const fd = native.mapCreate(PERCPU_HASH, 'nt_pcpu', 4, 4, 4, 0);
  t.teardown(() => native.closeFd(fd));
  const value = Buffer.alloc(8 * cpus);
  for (let c = 0; c < cpus; c++) value.writeUInt32LE(100 + c, 8 * c);
  native.mapUpdate(fd, u32(5), value);
  const got = native.mapLookup(fd, u32(5))!;
  t.is(got.length, 8 * cpus);
  for (let c = 0; c < cpus; c++) t.is(got.readUInt32LE(8 * c), 100 + c);
  native.mapUpdateBatch(fd, [u32(6)], [value]);
  t.deepEqual(native.mapLookup(fd, u32(6)), value);
  const e = throwsNative(t, () => native.mapUpdate(fd, u32(5), Buffer.alloc(4)), 'EINVAL', 'mapUpdate');
  t.is(e.message, `update map nt_pcpu: value is 4 bytes, map wants ${8 * cpus}`);

  const h = native.openObject(obj, {});
  t.teardown(() => h.close());
  const counts = h.maps().find((m) => m.name === 'nt_counts')!;
  t.is(native.mapLookup(counts.fd, u32(0))!.length, 8 * cpus);
});

test('LPM trie: batch falls back per element, longest prefix wins, keys walk', (t) => {
  const h = native.openObject(obj, {});
  t.teardown(() => h.close());
  const fd = h.maps().find((m) => m.name === 'nt_verdicts')!.fd;
  native.mapUpdateBatch(fd, [lpmKey('10.0.0.0/8'), lpmKey('10.1.0.0/16')], [u32(1), u32(2)]);
  t.deepEqual(native.mapLookup(fd, lpmKey('10.1.2.3/32')), u32(2));
  t.deepEqual(native.mapLookup(fd, lpmKey('10.9.9.9/32')), u32(1));
  t.is(native.mapLookup(fd, lpmKey('11.0.0.1/32')), null);
  t.is(native.mapKeys(fd).length, 2);
  t.is(native.mapDeleteBatch(fd, [lpmKey('10.1.0.0/16'), lpmKey('12.0.0.0/8')]), 1);
  t.deepEqual(native.mapLookup(fd, lpmKey('10.1.2.3/32')), u32(1));
});

test('arrays refuse delete; wrong sizes are refused before the syscall', (t) => {
  const fd = native.mapCreate(ARRAY, 'nt_arr', 4, 8, 2, 0);
  t.teardown(() => native.closeFd(fd));
  t.deepEqual(native.mapLookup(fd, u32(1)), u64(0n));
  throwsNative(t, () => native.mapDelete(fd, u32(1)), 'EINVAL', 'bpf_map_delete_elem');
  throwsNative(t, () => native.mapDeleteBatch(fd, [u32(1)]), 'EINVAL', 'bpf_map_delete_elem');
  throwsNative(t, () => native.mapUpdate(fd, u32(9), u64(1n)), 'E2BIG', 'bpf_map_update_elem');
  const k = throwsNative(t, () => native.mapLookup(fd, Buffer.alloc(2)), 'EINVAL', 'mapLookup');
  t.is(k.message, 'lookup map nt_arr: key is 2 bytes, map wants 4');
  throwsNative(t, () => native.mapUpdateBatch(fd, [u32(0)], [u64(0n), u64(1n)]), 'EINVAL', 'mapUpdateBatch');
  throwsNative(t, () => native.mapUpdateBatch(fd, [u32(0), 'x' as unknown as Buffer], []), 'EINVAL', 'mapUpdateBatch');
});

test('pin, open pinned, unpin', (t) => {
  const dir = pinDir(t);
  const fd = hashMap(t);
  native.mapUpdate(fd, u32(3), u64(33n));
  const where = path.join(dir, 'm');
  native.pin(fd, where);
  const m = native.mapOpenPinned(where);
  t.teardown(() => native.closeFd(m.fd));
  t.like(m, { name: 'nt_test_hash', keySize: 4, valueSize: 8, maxEntries: 4, type: HASH });
  t.not(m.fd, fd);
  t.deepEqual(native.mapLookup(m.fd, u32(3)), u64(33n));
  throwsNative(t, () => native.pin(fd, where), 'EEXIST', 'bpf_obj_pin');
  native.unpin(where);
  throwsNative(t, () => native.unpin(where), 'ENOENT', 'unlink');
  throwsNative(t, () => native.mapOpenPinned(where), 'ENOENT', 'bpf_obj_get');
});

test('a pinned program opens with its type and id', (t) => {
  const dir = pinDir(t);
  const h = native.openObject(obj, {});
  t.teardown(() => h.close());
  const prog = h.programs().find((p) => p.name === 'nt_classify')!;
  native.pin(prog.fd, path.join(dir, 'prog'));
  const p = native.mapOpenPinned(path.join(dir, 'prog'));
  t.teardown(() => native.closeFd(p.fd));
  t.like(p, { id: prog.id, type: prog.type, keySize: 0 });
});

test('bad fds and bad arguments', (t) => {
  const fd = hashMap(t);
  // The kernel answers BPF_OBJ_GET_INFO_BY_FD on a closed fd with EBADFD.
  throwsNative(t, () => native.mapLookup(987654, u32(1)), 'EBADFD', 'bpf_obj_get_info_by_fd');
  throwsNative(t, () => native.closeFd(987654), 'EBADF', 'close');
  throwsNative(t, () => native.mapCreate(HASH, 'nt_bad', 4, 0, 4, 0), 'EINVAL', 'bpf_map_create');
  throwsNative(t, () => native.mapCreate(-1, 'nt_bad', 4, 8, 4, 0), 'EINVAL', 'mapCreate');
  throwsNative(t, () => native.mapUpdate(fd, 'k' as unknown as Buffer, u32(1)), 'EINVAL', 'mapUpdate');
});
