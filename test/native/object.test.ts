// openObject: load with pinning, maps/programs info, pins outliving the object and the
// process, max_entries overrides, and the error a changed pinned map definition gives.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { addonPath, native } from '../../src/datapath/native';
import { fixtureObject, pinDir, throwsNative, u32, u64 } from './helpers';

const BPF_MAP_TYPE_HASH = 1;
const BPF_MAP_TYPE_PERCPU_ARRAY = 6;
const BPF_MAP_TYPE_LPM_TRIE = 11;
const BPF_PROG_TYPE_SCHED_CLS = 3;
const BPF_PROG_TYPE_XDP = 6;

const obj = fixtureObject();

test('openObject loads maps and programs and pins LIBBPF_PIN_BY_NAME maps', (t) => {
  const dir = pinDir(t);
  const h = native.openObject(obj, { pinRoot: dir });
  t.teardown(() => h.close());
  const maps = Object.fromEntries(h.maps().map((m) => [m.name, m]));
  t.like(maps.nt_hash, { type: BPF_MAP_TYPE_HASH, keySize: 4, valueSize: 8, maxEntries: 16 });
  t.like(maps.nt_verdicts, { type: BPF_MAP_TYPE_LPM_TRIE, keySize: 8, valueSize: 4, flags: 1 });
  t.like(maps.nt_counts, { type: BPF_MAP_TYPE_PERCPU_ARRAY, maxEntries: 8 });
  for (const m of Object.values(maps)) t.true(m.fd > 2 && m.id > 0, m.name);
  t.true(maps.nt_hash.btfId > 0, 'maps carry BTF');
  t.deepEqual(fs.readdirSync(dir).sort(), ['nt_hash', 'nt_verdicts']);

  const progs = Object.fromEntries(h.programs().map((p) => [p.name, p]));
  t.like(progs.nt_classify, { type: BPF_PROG_TYPE_SCHED_CLS });
  t.like(progs.nt_classify2, { type: BPF_PROG_TYPE_SCHED_CLS });
  t.like(progs.nt_xdp, { type: BPF_PROG_TYPE_XDP });
  t.not(progs.nt_classify.id, progs.nt_classify2.id);
});

test('a pinned map survives closing the object, is reused on reopen and read by another process', (t) => {
  const dir = pinDir(t);
  const h = native.openObject(obj, { pinRoot: dir });
  const hash = h.maps().find((m) => m.name === 'nt_hash')!;
  native.mapUpdate(hash.fd, u32(7), u64(0x1234_5678_9abcn));
  h.close();

  const pinned = native.mapOpenPinned(path.join(dir, 'nt_hash'));
  t.teardown(() => native.closeFd(pinned.fd));
  t.is(pinned.id, hash.id);
  t.is(pinned.name, 'nt_hash');
  t.deepEqual(native.mapLookup(pinned.fd, u32(7)), u64(0x1234_5678_9abcn));

  const again = native.openObject(obj, { pinRoot: dir });
  t.teardown(() => again.close());
  t.is(again.maps().find((m) => m.name === 'nt_hash')!.id, hash.id, 'reopen reuses the pinned map');

  const script = `const n = require(${JSON.stringify(addonPath)});
    const m = n.mapOpenPinned(${JSON.stringify(path.join(dir, 'nt_hash'))});
    const k = Buffer.alloc(4); k.writeUInt32LE(7);
    process.stdout.write(n.mapLookup(m.fd, k).readBigUInt64LE().toString(16));`;
  t.is(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }), '123456789abc');
});

test('maxEntries overrides apply before load', (t) => {
  const h = native.openObject(obj, { maxEntries: { nt_hash: 100, nt_counts: 3 } });
  t.teardown(() => h.close());
  const maps = Object.fromEntries(h.maps().map((m) => [m.name, m]));
  t.is(maps.nt_hash.maxEntries, 100);
  t.is(maps.nt_counts.maxEntries, 3);
  t.false(fs.existsSync('/sys/fs/bpf/nt_hash'), 'no pinRoot: nothing pinned');
});

test('reusing a pinned map whose definition changed names the map and the field', (t) => {
  const dir = pinDir(t);
  native.openObject(obj, { pinRoot: dir }).close();
  const err = throwsNative(
    t,
    () => native.openObject(obj, { pinRoot: dir, maxEntries: { nt_hash: 32 } }),
    'EINVAL',
    'bpf_object__load',
  );
  t.regex(
    err.message,
    /^load object .*native_test\.bpf\.o: pinned map nt_hash at .*nt_hash has max_entries 16, object wants 32/,
  );
  t.like(err as unknown as Record<string, unknown>, { map: 'nt_hash', field: 'max_entries' });
});

test('openObject errors', (t) => {
  const e = throwsNative(t, () => native.openObject('/nonexistent/x.bpf.o', {}), 'ENOENT', 'bpf_object__open_file');
  t.regex(e.message, /^open object \/nonexistent\/x\.bpf\.o: No such file or directory/);
  const m = throwsNative(
    t,
    () => native.openObject(obj, { maxEntries: { nope: 1 } }),
    'ENOENT',
    'bpf_object__find_map_by_name',
  );
  t.regex(m.message, /^set max_entries of map nope: no such map in /);
  const r = throwsNative(t, () => native.openObject(obj, { pinRoot: '/nonexistent-bpffs' }), 'ENOENT', 'statfs');
  t.regex(r.message, /: pin root \/nonexistent-bpffs: No such file or directory$/);
  const f = throwsNative(t, () => native.openObject(obj, { pinRoot: '/tmp' }), 'EINVAL', 'statfs');
  t.regex(f.message, /: pin root \/tmp is not on bpffs$/);
  const h = native.openObject(obj, {});
  h.close();
  throwsNative(t, () => h.maps(), 'EBADF', 'maps');
  throwsNative(t, () => native.mapOpenPinned('/sys/fs/bpf/nf-absent'), 'ENOENT', 'bpf_obj_get');
  throwsNative(t, () => native.openObject(42 as unknown as string, {}), 'EINVAL', 'openObject');
  throwsNative(t, () => native.openObject(obj, { maxEntries: 5 as never }), 'EINVAL', 'openObject');
  throwsNative(t, () => native.openObject(obj, { maxEntries: { nt_hash: -1 } }), 'EINVAL', 'openObject maxEntries');
});
