// src/wire/ against the BTF of the compiled object: struct sizes and field offsets
// (layout.ts), every enum value and flag bit (abi.ts; bpf/include/btf_pins.h pins each
// enum), and the numeric #defines of netfence.h. A field, enum value or constant added,
// moved or changed on one side only fails here.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  NF_BITMAP_WORDS,
  NF_CHUNK_RULES,
  NF_CHUNK_SHIFT,
  NF_CT_CLOSE_TIMEOUT_NS,
  NF_CT_RULE_DEFAULT,
  NF_EP_SLOTS,
  NF_LAYOUT_VERSION,
  NF_MAX_CHUNKS,
  NF_MAX_RULES,
  NF_REASON_DESC,
  NF_RULE_DEFAULT,
  NF_TABLE_DENY,
  NF_TABLE_MASK,
  NF_TABLE_NONE,
  NfAction,
  NfCfgFlag,
  NfCtFlag,
  NfCtOrig,
  NfDir,
  NfEpFlag,
  NfEpVerdict,
  NfLocalKind,
  NfReason,
  NfTier,
} from '../../src/wire/abi';
import { LAYOUT, type StructName } from '../../src/wire/layout';
import { buildObjects, objectPath, root } from './objects';

interface BtfMember {
  name: string;
  bits_offset: number;
}
interface BtfType {
  id: number;
  kind: string;
  name?: string;
  size?: number;
  members?: BtfMember[];
  values?: { name: string; val: number }[];
}

function btfTypes(obj: string): BtfType[] {
  const out = execFileSync('bpftool', ['btf', 'dump', 'file', obj, '-j'], { encoding: 'utf8' });
  return (JSON.parse(out) as { types: BtfType[] }).types;
}

function btfStructs(obj: string): Map<string, BtfType> {
  return new Map(
    btfTypes(obj)
      .filter((t) => t.kind === 'STRUCT' && t.name)
      .map((t) => [t.name!, t]),
  );
}

/** Each enum of abi.ts: its C enum and the prefix of the C constants. */
const ENUMS: readonly [cName: string, prefix: string, values: Record<string, number>, flags: boolean][] = [
  ['nf_dir', 'NF_DIR_', NfDir, false],
  ['nf_action', 'NF_ACT_', NfAction, false],
  ['nf_tier', 'NF_TIER_', NfTier, false],
  ['nf_ep_flag', 'NF_EP_F_', NfEpFlag, true],
  ['nf_ep_verdict', 'NF_EP_', NfEpVerdict, false],
  ['nf_ct_flag', 'NF_CT_F_', NfCtFlag, true],
  ['nf_ct_orig', 'NF_CT_O_', NfCtOrig, true],
  ['nf_local_kind', 'NF_LOCAL_', NfLocalKind, false],
  ['nf_reason', 'NF_REASON_', NfReason, false],
  ['nf_cfg_flag', 'NF_CFG_F_', NfCfgFlag, true],
];

const header = readFileSync(path.join(root, 'bpf/include/netfence.h'), 'utf8');

buildObjects();
const types = btfTypes(objectPath('netfence'));
const structs = new Map(types.filter((t) => t.kind === 'STRUCT' && t.name).map((t) => [t.name!, t]));
const enums = new Map(
  types
    .filter((t) => t.kind === 'ENUM' && t.name)
    .map((t) => [t.name!, Object.fromEntries((t.values ?? []).map((v) => [v.name, v.val]))]),
);

for (const name of Object.keys(LAYOUT) as StructName[]) {
  test(`struct ${name}: size and field offsets match wire/layout.ts`, (t) => {
    const bt = structs.get(name);
    if (!bt) return t.fail(`struct ${name} missing from the object's BTF`);
    const layout = LAYOUT[name];
    t.is(bt.size, layout.size, 'size');
    const btfFields = Object.fromEntries((bt.members ?? []).map((m) => [m.name, m.bits_offset / 8]));
    t.deepEqual(btfFields, { ...layout.fields }, 'field names and byte offsets');
  });
}

test('prefilter object carries the shared LPM key layout', (t) => {
  const bt = btfStructs(objectPath('prefilter')).get('nf_addr_lpm_key');
  t.is(bt?.size, LAYOUT.nf_addr_lpm_key.size);
});

for (const [cName, prefix, values, flags] of ENUMS) {
  test(`enum ${cName}: every value matches abi.ts`, (t) => {
    const btf = enums.get(cName);
    if (!btf) return t.fail(`enum ${cName} missing from the object's BTF (pin it in btf_pins.h)`);
    t.deepEqual(btf, Object.fromEntries(Object.entries(values).map(([k, v]) => [prefix + k, v])));
    if (flags)
      t.true(
        Object.values(values).every((v, i, all) => v > 0 && (v & (v - 1)) === 0 && all.indexOf(v) === i),
        'distinct single bits',
      );
  });
}

test('every enum of netfence.h reaches BTF and abi.ts; no flag is left a #define', (t) => {
  const declared = [...header.matchAll(/^enum (nf_\w+) \{/gm)].map((m) => m[1]).sort();
  t.deepEqual(declared, ENUMS.map(([n]) => n).sort(), 'netfence.h enums = abi.ts enums');
  t.deepEqual([...enums.keys()].filter((n) => n.startsWith('nf_')).sort(), declared, 'BTF enums = netfence.h enums');
  t.notRegex(header, /^#define NF_\w+\s+\(1u << \d+\)/m, 'flag bits are enum values');
});

test('the enum pins add no global data (no .rodata/.bss map at load)', (t) => {
  const sections = types.filter((x) => x.kind === 'DATASEC').map((x) => x.name);
  t.deepEqual(sections.sort(), ['.maps', '.nf_btf_pins', 'license']);
});

test('one drop_reason_desc per reason', (t) => {
  t.is(NF_REASON_DESC.length, enums.get('nf_reason')?.NF_REASON_MAX ?? -1);
});

// Numeric #defines (no BTF): read from the header itself.
test('layout, chunk and sentinel constants match netfence.h', (t) => {
  const value = (name: string): number => {
    const m = new RegExp(`^#define ${name}\\s+(0x[0-9a-f]+|\\d+)u?$`, 'm').exec(header);
    if (!m) throw new Error(`netfence.h: no numeric #define ${name}`);
    return Number(m[1]);
  };
  t.is(value('NF_LAYOUT_VERSION'), NF_LAYOUT_VERSION);
  t.is(value('NF_CHUNK_RULES'), NF_CHUNK_RULES);
  t.is(value('NF_CHUNK_SHIFT'), NF_CHUNK_SHIFT);
  t.is(value('NF_MAX_CHUNKS'), NF_MAX_CHUNKS);
  t.is(value('NF_TABLE_NONE'), NF_TABLE_NONE);
  t.is(value('NF_RULE_DEFAULT'), NF_RULE_DEFAULT);
  t.is(value('NF_CT_RULE_DEFAULT'), NF_CT_RULE_DEFAULT);
  t.is(value('NF_EP_SLOTS'), NF_EP_SLOTS);
  t.regex(header, /^#define NF_CT_CLOSE_TIMEOUT_NS \(10ULL \* 1000000000ULL\)$/m);
  t.is(NF_CT_CLOSE_TIMEOUT_NS, 10n * 1_000_000_000n);
  // the derived ones, as the header derives them
  t.regex(header, /^#define NF_MAX_RULES \(NF_CHUNK_RULES \* NF_MAX_CHUNKS\)$/m);
  t.is(NF_MAX_RULES, NF_CHUNK_RULES * NF_MAX_CHUNKS);
  t.regex(header, /^#define NF_BITMAP_WORDS \(NF_CHUNK_RULES \/ 64\)$/m);
  t.is(NF_BITMAP_WORDS, NF_CHUNK_RULES / 64);
  t.regex(header, /^#define NF_TABLE_MASK \(\(1u << NF_CHUNK_SHIFT\) - 1\)$/m);
  t.is(NF_TABLE_MASK, 2 ** NF_CHUNK_SHIFT - 1);
  t.regex(header, /^#define NF_TABLE_DENY NF_TABLE_MASK$/m);
  t.is(NF_TABLE_DENY, NF_TABLE_MASK);
  // a chunk number fits the key's top byte, a chunk count nf_endpoint.chunks (u8)
  t.true(NF_MAX_CHUNKS <= 2 ** (32 - NF_CHUNK_SHIFT) && NF_MAX_CHUNKS <= 255);
  // global rule indices fit the u16 fields (nf_rule.tier_end, nf_ct_val.rule, nf_event.rule_index), 0xffff reserved
  t.true(NF_MAX_RULES < NF_CT_RULE_DEFAULT);
});
