// Maps pinned by netfence carry BTF, so `bpftool map dump pinned` prints decoded
// structs: what an operator sees must match what the wire codecs wrote.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { NfAction, NfEpFlag, NfTier } from '../../src/wire/abi';
import { encodeU32 } from '../../src/wire/bytes';
import { encodeEndpoint } from '../../src/wire/endpoint';
import { encodeRule, encodeRuleKey } from '../../src/wire/tables';
import { native } from '../../src/datapath/native';
import { buildObjects, objectPath } from './objects';

interface DumpEntry<V> {
  key: unknown;
  value: V;
}

/** With BTF, each JSON record carries the raw bytes and a `formatted` decoded copy. */
function dump<V>(pin: string): DumpEntry<V>[] {
  const raw = JSON.parse(execFileSync('bpftool', ['-j', 'map', 'dump', 'pinned', pin], { encoding: 'utf8' })) as {
    formatted?: DumpEntry<V>;
  }[];
  return raw.map((r) => {
    if (!r.formatted) throw new Error(`dump ${pin}: no BTF-decoded record`);
    return r.formatted;
  });
}

test('bpftool map dump pinned prints decoded endpoint and rule structs', (t) => {
  buildObjects();
  const root = `/sys/fs/bpf/nf-dump-${process.pid}`;
  fs.mkdirSync(root, { recursive: true });
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));

  const obj = native.openObject(objectPath('netfence'), { pinRoot: root });
  try {
    const fd = (name: string): number => {
      const m = obj.maps().find((x) => x.name === name);
      if (!m) throw new Error(`map ${name} missing`);
      return m.fd;
    };
    native.mapUpdate(
      fd('nf_endpoints'),
      encodeU32(7),
      encodeEndpoint({
        id: 42,
        ingressTable: 3,
        egressTable: 9,
        ingressChunks: 1,
        egressChunks: 2,
        flags: NfEpFlag.POD,
        revision: 5,
        statsSlot: 3,
      }),
    );
    native.mapUpdate(
      fd('nf_rules'),
      encodeRuleKey(3, 1),
      encodeRule({ action: NfAction.DENY, tier: NfTier.ADMIN, tierEnd: 4, policyId: 11, ruleId: 2 }),
    );
  } finally {
    obj.close();
  }

  const eps = dump<{
    id: number;
    table: number[];
    chunks: number[];
    flags: number;
    revision: number;
    stats_slot: number;
  }>(`${root}/nf_endpoints`);
  t.deepEqual(
    eps.map((e) => e.key),
    [7],
  );
  t.like(eps[0].value, { id: 42, flags: NfEpFlag.POD, revision: 5, stats_slot: 3 });
  t.deepEqual(eps[0].value.table, [3, 9], 'table[] is indexed by direction: ingress, egress');
  t.deepEqual(eps[0].value.chunks, [1, 2], 'chunks[] too');

  const rules = dump<{ action: number; tier: number; tier_end: number; policy_id: number; rule_id: number }>(
    `${root}/nf_rules`,
  );
  t.deepEqual(rules[0].key, { table: 3, index: 1 });
  t.like(rules[0].value, { action: NfAction.DENY, tier: NfTier.ADMIN, tier_end: 4, policy_id: 11, rule_id: 2 });
});
