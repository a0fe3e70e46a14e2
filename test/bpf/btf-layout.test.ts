// The codecs' sizes and offsets (src/datapath/codecs.ts LAYOUT) against the BTF
// of the compiled object: a field added, moved or resized in netfence.h fails here.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { LAYOUT, NF_CHUNK_RULES, NF_CT_RULE_DEFAULT, NF_CHUNK_SHIFT, NF_LAYOUT_VERSION, NF_MAX_CHUNKS, NF_MAX_RULES, NF_TABLE_DENY, NF_TABLE_MASK, NfCfgFlag, NfCtFlag, NfEpFlag, type StructName } from '../../src/datapath/codecs';
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
}

function btfStructs(obj: string): Map<string, BtfType> {
  const out = execFileSync('bpftool', ['btf', 'dump', 'file', obj, '-j'], { encoding: 'utf8' });
  const types = (JSON.parse(out) as { types: BtfType[] }).types;
  return new Map(types.filter((t) => t.kind === 'STRUCT' && t.name).map((t) => [t.name!, t]));
}

buildObjects();
const structs = btfStructs(objectPath('netfence'));

for (const name of Object.keys(LAYOUT) as StructName[]) {
  test(`struct ${name}: size and field offsets match codecs.ts`, (t) => {
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

// Flag bits are #defines (no BTF): read them from the header itself.
test('flag constants match netfence.h', (t) => {
  const header = readFileSync(path.join(root, 'bpf/include/netfence.h'), 'utf8');
  const defined = (prefix: string): Record<string, number> =>
    Object.fromEntries([...header.matchAll(new RegExp(`^#define ${prefix}(\\w+)\\s+\\(1u << (\\d+)\\)`, 'gm'))].map((m) => [m[1], 1 << Number(m[2])]));
  t.deepEqual(defined('NF_EP_F_'), { ...NfEpFlag }, 'NF_EP_F_*');
  t.deepEqual(defined('NF_CT_F_'), { ...NfCtFlag }, 'NF_CT_F_*');
  t.deepEqual(defined('NF_CFG_F_'), { ...NfCfgFlag }, 'NF_CFG_F_*');
});

// Numeric #defines too: the layout version and the chunking of tables.
test('layout and chunk constants match netfence.h', (t) => {
  const header = readFileSync(path.join(root, 'bpf/include/netfence.h'), 'utf8');
  const value = (name: string): number => {
    const m = new RegExp(`^#define ${name}\\s+(\\d+)$`, 'm').exec(header);
    if (!m) throw new Error(`netfence.h: no numeric #define ${name}`);
    return Number(m[1]);
  };
  t.is(value('NF_LAYOUT_VERSION'), NF_LAYOUT_VERSION);
  t.is(value('NF_CHUNK_RULES'), NF_CHUNK_RULES);
  t.is(value('NF_CHUNK_SHIFT'), NF_CHUNK_SHIFT);
  t.is(value('NF_MAX_CHUNKS'), NF_MAX_CHUNKS);
  // the derived ones, as the header derives them
  t.regex(header, /^#define NF_MAX_RULES \(NF_CHUNK_RULES \* NF_MAX_CHUNKS\)$/m);
  t.is(NF_MAX_RULES, NF_CHUNK_RULES * NF_MAX_CHUNKS);
  t.regex(header, /^#define NF_TABLE_MASK \(\(1u << NF_CHUNK_SHIFT\) - 1\)$/m);
  t.is(NF_TABLE_MASK, 2 ** NF_CHUNK_SHIFT - 1);
  t.regex(header, /^#define NF_TABLE_DENY NF_TABLE_MASK$/m);
  t.is(NF_TABLE_DENY, NF_TABLE_MASK);
  // a chunk number fits the key's top byte, a chunk count nf_endpoint.chunks (u8)
  t.true(NF_MAX_CHUNKS <= 2 ** (32 - NF_CHUNK_SHIFT) && NF_MAX_CHUNKS <= 255);
  // global rule indices fit the u16 fields (nf_rule.tier_end, nf_ct_val.rule, nf_event.rule_index), 0xffff reserved
  t.true(NF_MAX_RULES < NF_CT_RULE_DEFAULT);
});
