// The codecs' sizes and offsets (src/datapath/codecs.ts LAYOUT) against the BTF
// of the compiled object: a field added, moved or resized in netfence.h fails here.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { LAYOUT, NfCfgFlag, NfCtFlag, NfEpFlag, type StructName } from '../../src/datapath/codecs';
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
