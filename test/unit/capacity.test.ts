// NetfenceConfig `capacity`: defaults, validation naming the field, and the defaults agreeing
// with the max_entries declared in bpf/ (the object as built).
import test from 'ava';
import { defaultCapacity, MAX_CAPACITY } from '../../src/model/config';
import { capacityMaxEntries, DEFAULT_OBJECT } from '../../src/datapath/loader';
import { native } from '../../src/datapath/native';
import { snapshotFromYaml } from '../../src/sources/directory';

const config = (capacity: string) =>
  snapshotFromYaml(`apiVersion: netfence.io/v1alpha1\nkind: NetfenceConfig\ncapacity: ${capacity}\n`, 'netfence.yaml');

test('capacity: absent fields keep their defaults; given ones are taken', (t) => {
  t.deepEqual(
    snapshotFromYaml('apiVersion: netfence.io/v1alpha1\nkind: NetfenceConfig\n').config.capacity,
    defaultCapacity(),
  );
  const s = config('{ peerCidrs: 500000, endpoints: 512 }');
  t.deepEqual(s.errors, []);
  t.deepEqual(s.config.capacity, { ...defaultCapacity(), peerCidrs: 500000, endpoints: 512 });
  t.like(capacityMaxEntries(s.config.capacity), { nf_peer_cidr: 500000, nf_endpoints: 512, nf_local_addrs: 1024 });
});

test('capacity: a bad value or an unknown field is an error naming the field; the config keeps its defaults', (t) => {
  const cases: [string, string, RegExp][] = [
    ['{ rules: 0 }', 'capacity.rules', new RegExp(`between 1 and ${MAX_CAPACITY}`)],
    ['{ ports: 1.5 }', 'capacity.ports', /integer/],
    ['{ conntrack: "lots" }', 'capacity.conntrack', /integer|number/],
    [`{ identities: ${MAX_CAPACITY + 1} }`, 'capacity.identities', /between/],
    ['{ peerCidr: 1000 }', 'capacity.peerCidr', /unknown field "peerCidr"/],
    ['[1000]', 'capacity', /must be an object/],
  ];
  for (const [value, field, message] of cases) {
    const s = config(value);
    t.is(s.errors.length, 1, value);
    t.like(s.errors[0], { file: 'netfence.yaml', line: 3, object: 'NetfenceConfig netfence', field }, value);
    t.regex(s.errors[0].message, message, value);
    t.deepEqual(s.config.capacity, defaultCapacity(), value);
  }
});

test('capacity: the defaults are the max_entries declared in bpf/', (t) => {
  const obj = native.openObject(DEFAULT_OBJECT, {});
  t.teardown(() => obj.close());
  const declared = new Map(obj.maps().map((m) => [m.name, m.maxEntries]));
  for (const [name, max] of Object.entries(capacityMaxEntries(defaultCapacity()))) t.is(declared.get(name), max, name);
});
