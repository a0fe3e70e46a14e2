// Harness arithmetic: medians, interleaved schedules and ratios. Pure, so the smoke
// test checks it without a kernel.

export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new Error('compute median: no samples');
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Nearest-rank percentile, p in 0..100. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) throw new Error(`compute p${p}: no samples`);
  if (!(p >= 0 && p <= 100)) throw new Error(`compute percentile: p=${p} out of range 0..100`);
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * s.length));
  return s[rank - 1];
}

/** Ratio of a measurement to its baseline; NaN when the baseline is not positive. */
export function ratio(value: number, baseline: number): number {
  return baseline > 0 ? value / baseline : Number.NaN;
}

/** The interleaved order A B C A B C ...: every round runs each variant once, so slow
 *  drift (thermal, other load) spreads over all variants instead of biasing one. */
export function interleave<T>(variants: readonly T[], rounds: number): { round: number; variant: T }[] {
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`schedule rounds: ${rounds} is not a positive integer`);
  const out: { round: number; variant: T }[] = [];
  for (let round = 0; round < rounds; round++) for (const variant of variants) out.push({ round, variant });
  return out;
}

/** Run `measure` over the interleaved schedule; samples per variant name, in round order. */
export async function runInterleaved<T extends { name: string }>(
  variants: readonly T[],
  rounds: number,
  measure: (variant: T, round: number) => Promise<number> | number,
): Promise<Record<string, number[]>> {
  const samples: Record<string, number[]> = {};
  for (const v of variants) {
    if (samples[v.name]) throw new Error(`schedule variant "${v.name}": duplicate name`);
    samples[v.name] = [];
  }
  for (const { round, variant } of interleave(variants, rounds)) {
    samples[variant.name].push(await measure(variant, round));
  }
  return samples;
}

/** Deterministic PRNG (mulberry32) so synthetic inputs are the same in every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
