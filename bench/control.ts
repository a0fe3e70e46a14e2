// Control-plane benchmark: compile time and peak RSS for a synthetic 10k-pod cluster
// (in a child process, so its maxRSS is the compile's), map entries and memory, and
// the cost of one pod added / removed and one policy changed (recompile + diff).
import path from 'node:path';
import { run } from './exec';
import { REPO_ROOT } from './datapath';
import type { ChildReport } from './compile-child';
import { median, percentile } from './stats';
import type { ControlResults } from './types';

export interface ControlOptions {
  rounds: number;
  quick: boolean;
  log: (msg: string) => void;
}

async function child(size: 'big' | 'small', rounds: number, samples: number): Promise<ChildReport> {
  const script = path.join(REPO_ROOT, 'dist', 'bench', 'compile-child.js');
  const { stdout } = await run(process.execPath, [script, '--size', size, '--rounds', String(rounds), '--samples', String(samples)], {
    timeoutMs: 15 * 60 * 1000,
  });
  return JSON.parse(stdout) as ChildReport;
}

const stats = (ms: number[]): { p50Ms: number; p99Ms: number } => ({ p50Ms: percentile(ms, 50), p99Ms: percentile(ms, 99) });

export async function runControl(opts: ControlOptions): Promise<ControlResults> {
  opts.log('control: compiling the 1k-pod cluster (O(1) reference)');
  const small = await child('small', 1, 1);
  opts.log('control: compiling the 10k-pod cluster');
  const big = await child('big', opts.rounds, opts.quick ? 5 : 20);
  if (big.errors > 0) opts.log(`control: the compiler reported ${big.errors} errors for the synthetic cluster`);
  return {
    pods: big.pods,
    namespaces: big.namespaces,
    policies: big.policies,
    nodes: big.nodes,
    localEndpoints: big.localEndpoints,
    compileMs: median(big.compileSamplesMs),
    compileSamplesMs: big.compileSamplesMs,
    peakRssMb: big.peakRssMb,
    mapEntries: big.mapEntries,
    bpfMemoryBytes: big.bpfMemoryBytes,
    podAdd: { updates: big.podAdd.updates, updatesSmallCluster: small.podAdd.updates, samplesMs: big.podAdd.samplesMs, ...stats(big.podAdd.samplesMs) },
    podRemove: { updates: big.podRemove.updates, ...stats(big.podRemove.samplesMs) },
    policyChange: { updates: big.policyChange.updates, ...stats(big.policyChange.samplesMs) },
  };
}
