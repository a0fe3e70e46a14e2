// Port ranges as the nf_ports trie matches them: LPM prefixes over the 16-bit port.

/** Split an inclusive port range into LPM prefixes (value, bits). */
export function portRangePrefixes(start: number, end: number): { port: number; portBits: number }[] {
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > 0xffff || start > end) {
    throw new Error(`split port range ${start}-${end}: need 0 <= start <= end <= 65535`);
  }
  const out: { port: number; portBits: number }[] = [];
  let p = start;
  while (p <= end) {
    let size = 1;
    let bits = 16;
    // Grow the block while it stays aligned and inside the range.
    while (bits > 0 && p % (size * 2) === 0 && p + size * 2 - 1 <= end) {
      size *= 2;
      bits--;
    }
    out.push({ port: p, portBits: bits });
    p += size;
  }
  return out;
}
