// A BenchResults with no part measured, for tests of one part's report rows and target.
import type { BenchResults } from '../../bench/types';

export function benchResults(parts: Partial<BenchResults>): BenchResults {
  return {
    version: 1,
    date: '2025-01-01T00:00:00Z',
    command: 'npm run bench',
    quick: false,
    rounds: 5,
    machine: { kernel: 'k', cpus: 2, node: 'v20' },
    crr: {},
    throughput: {},
    samples: { crr: {}, throughput: {} },
    skipped: {},
    targets: [],
    durationS: 1,
    ...parts,
  };
}
