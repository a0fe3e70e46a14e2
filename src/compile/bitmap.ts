// Rule bitmaps (struct nf_bitmap): bit i of host-order u64 word i/64 = rule
// chunk * NF_CHUNK_RULES + i. The functions take and return global rule indices, with
// the chunk (default 0) the bitmap belongs to.
import { NF_CHUNK_RULES } from '../wire/abi';
import { HOST_LE } from '../wire/bytes';
import { alloc, checkSize } from '../wire/layout';

export function bitmapNew(): Buffer {
  return alloc('nf_bitmap');
}

function bitPos(global: number, chunk: number): { byte: number; mask: number } {
  const first = chunk * NF_CHUNK_RULES;
  const i = global - first;
  if (!Number.isInteger(i) || i < 0 || i >= NF_CHUNK_RULES) {
    throw new Error(
      `bitmap: rule index ${global} out of range ${first}..${first + NF_CHUNK_RULES - 1} (chunk ${chunk})`,
    );
  }
  const word = Math.floor(i / 64);
  const bit = i % 64;
  const byteInWord = HOST_LE ? Math.floor(bit / 8) : 7 - Math.floor(bit / 8);
  return { byte: word * 8 + byteInWord, mask: 1 << (bit % 8) };
}

export function bitmapSet(b: Buffer, i: number, chunk = 0): Buffer {
  const p = bitPos(i, chunk);
  b[p.byte] |= p.mask;
  return b;
}

export function bitmapClear(b: Buffer, i: number, chunk = 0): Buffer {
  const p = bitPos(i, chunk);
  b[p.byte] &= ~p.mask & 0xff;
  return b;
}

export function bitmapTest(b: Buffer, i: number, chunk = 0): boolean {
  const p = bitPos(i, chunk);
  return (b[p.byte] & p.mask) !== 0;
}

export function bitmapFrom(indices: Iterable<number>, chunk = 0): Buffer {
  const b = bitmapNew();
  for (const i of indices) bitmapSet(b, i, chunk);
  return b;
}

export function bitmapIndices(b: Buffer, chunk = 0): number[] {
  checkSize('nf_bitmap', b);
  const out: number[] = [];
  const first = chunk * NF_CHUNK_RULES;
  for (let i = first; i < first + NF_CHUNK_RULES; i++) if (bitmapTest(b, i, chunk)) out.push(i);
  return out;
}

export function bitmapOr(a: Buffer, b: Buffer): Buffer {
  const out = bitmapNew();
  for (let i = 0; i < out.length; i++) out[i] = a[i] | b[i];
  return out;
}
