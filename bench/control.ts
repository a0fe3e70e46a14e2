// Control-plane benchmark: compile time and peak RSS for a synthetic 10k-pod cluster
// (in a child process, so its maxRSS is the compile's), map entries and memory, and
// the cost of one pod added / removed and one policy changed (recompile + diff).
// A slow compiler is stopped at a deadline; what finished by then is reported, and a
// first compile that did not finish is reported as a lower bound.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './datapath';
import type { ChangeName, ChildEvent } from './compile-child';
import { median, percentile } from './stats';
import type { ControlResults } from './types';

export interface ControlOptions {
  rounds: number;
  quick: boolean;
  log: (msg: string) => void;
}

interface ChildRun {
  events: ChildEvent[];
  timedOut: boolean;
  elapsedMs: number;
  /** VmHWM of the child when it was stopped (MB), 0 if it finished. */
  hwmMb: number;
}

function vmHwmMb(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

function child(size: 'big' | 'small', rounds: number, samples: number, deadlineMs: number): Promise<ChildRun> {
  const script = path.join(REPO_ROOT, 'dist', 'bench', 'compile-child.js');
  return new Promise((resolve, reject) => {
    const started = Date.now();
    // --expose-gc: the child collects the previous round's compiler before the next, so the
    // peak is one compile's, not the garbage of several.
    const p = spawn(
      process.execPath,
      ['--expose-gc', script, '--size', size, '--rounds', String(rounds), '--samples', String(samples)],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const events: ChildEvent[] = [];
    let buf = '';
    let stderr = '';
    let timedOut = false;
    let hwmMb = 0;
    const timer = setTimeout(() => {
      timedOut = true;
      hwmMb = vmHwmMb(p.pid!);
      p.kill('SIGKILL');
    }, deadlineMs);
    p.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        events.push(JSON.parse(buf.slice(0, nl)) as ChildEvent);
        buf = buf.slice(nl + 1);
      }
    });
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', (e) => reject(new Error(`run compile child: ${e.message}`)));
    p.on('close', (code) => {
      clearTimeout(timer);
      if (!timedOut && code !== 0)
        reject(new Error(`run compile child (${size}): exit ${code}: ${stderr.trim().slice(0, 400)}`));
      else resolve({ events, timedOut, elapsedMs: Date.now() - started, hwmMb });
    });
  });
}

function changes(run: ChildRun, name: ChangeName): { updates: number; samplesMs: number[] } {
  const es = run.events.filter(
    (e): e is Extract<ChildEvent, { kind: 'change' }> => e.kind === 'change' && e.name === name,
  );
  return { updates: Math.max(0, ...es.map((e) => e.updates)), samplesMs: es.map((e) => e.ms) };
}

const stats = (ms: number[]): { p50Ms: number; p99Ms: number } =>
  ms.length ? { p50Ms: percentile(ms, 50), p99Ms: percentile(ms, 99) } : { p50Ms: NaN, p99Ms: NaN };

export async function runControl(opts: ControlOptions): Promise<ControlResults> {
  opts.log('control: compiling the 1k-pod cluster (O(1) reference)');
  const small = await child('small', 1, opts.quick ? 3 : 5, 5 * 60_000);
  const deadlineMs = opts.quick ? 60_000 : 10 * 60_000;
  opts.log(`control: compiling the 10k-pod cluster (deadline ${deadlineMs / 1000} s)`);
  // A p99 needs about 100 samples: of 20, it is the slowest one, a single hiccup of the host.
  const big = await child('big', opts.rounds, opts.quick ? 20 : 100, deadlineMs);

  const meta = big.events.find((e): e is Extract<ChildEvent, { kind: 'meta' }> => e.kind === 'meta');
  if (!meta) throw new Error('run compile child: no cluster generated before the deadline');
  const compiles = big.events.filter((e): e is Extract<ChildEvent, { kind: 'compile' }> => e.kind === 'compile');
  const last = compiles.at(-1);
  if (last && last.errors > 0)
    opts.log(`control: the compiler reported ${last.errors} errors for the synthetic cluster`);
  // Changes on the big cluster when it got that far, else on the 1k-pod one (named).
  const src = changes(big, 'podAdd').samplesMs.length ? big : small;
  const changesOn = src === big ? `${meta.pods} pods` : '1000 pods (the 10k-pod compile did not finish in time)';
  const podAdd = changes(src, 'podAdd');
  const podRemove = changes(src, 'podRemove');
  const policyChange = changes(src, 'policyChange');
  return {
    pods: meta.pods,
    namespaces: meta.namespaces,
    policies: meta.policies,
    nodes: meta.nodes,
    localEndpoints: meta.localEndpoints,
    compileMs: compiles.length ? median(compiles.map((c) => c.ms)) : big.elapsedMs,
    compileSamplesMs: compiles.map((c) => c.ms),
    compileTimedOut: compiles.length === 0,
    peakRssMb: Math.max(big.hwmMb, ...compiles.map((c) => c.rssMb)),
    mapEntries: last?.mapEntries ?? {},
    bpfMemoryBytes: last?.bpfMemoryBytes ?? NaN,
    changesOn,
    podAdd: {
      updates: podAdd.updates,
      updatesSmallCluster: changes(small, 'podAdd').updates,
      samplesMs: podAdd.samplesMs,
      ...stats(podAdd.samplesMs),
    },
    podRemove: { updates: podRemove.updates, ...stats(podRemove.samplesMs) },
    policyChange: { updates: policyChange.updates, ...stats(policyChange.samplesMs) },
  };
}
