// `npm run bench [-- --quick] [--only pkt,net,control,apply,scale,lab,tunnel,cni,churn,localdelivery] [--object PATH]`
// Runs the benchmarks, prints ratio tables, writes bench/results/latest.json and
// regenerates bench/REPORT.md + bench/chart.svg. Parts whose prerequisites are missing
// (datapath object, addon, CLI) are skipped and named in the report.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { NativeAddon } from '../src/datapath/native-api';
import { EMPTY_OBJECT, CRR_BINARY, NETFENCE_OBJECT, REPO_ROOT } from './datapath';
import { runApply } from './apply';
import { runChurnBench } from './churn';
import { runCni } from './cni';
import { runControl } from './control';
import { runLab } from './lab';
import { runLocalDelivery } from './localdelivery';
import { defaultLocalDelivery, localDeliveryRows } from './localdelivery-report';
import { runNet, type Engine } from './net';
import { runPkt } from './pkt';
import { runScale } from './scale';
import { runTunnel } from './tunnel';
import { tunnelRows } from './tunnel-report';
import { evaluateTargets, netVariantOrder, writeReport } from './report';
import { ratio } from './stats';
import type { BenchResults } from './types';

const PARTS = ['pkt', 'net', 'control', 'apply', 'scale', 'lab', 'tunnel', 'cni', 'churn', 'localdelivery'] as const;
type Part = (typeof PARTS)[number];

/** The result fields each part fills. */
const PART_FIELDS: Record<Part, (keyof BenchResults)[]> = {
  pkt: ['pkt'],
  net: ['crr', 'throughput', 'samples', 'programCost', 'crrPaired'],
  control: ['control'],
  apply: ['apply'],
  scale: ['scale'],
  lab: ['lab'],
  tunnel: ['tunnel'],
  cni: ['cni'],
  churn: ['churn'],
  localdelivery: ['localDelivery'],
};

/** A `--only` run keeps the parts it did not run from the previous results, with their dates. */
function keepOtherParts(results: BenchResults, only: ReadonlySet<Part>, file: string): void {
  if (only.size === PARTS.length || !existsSync(file)) return;
  const prev = JSON.parse(readFileSync(file, 'utf8')) as BenchResults;
  if (prev.version !== results.version) return;
  for (const part of PARTS) {
    if (only.has(part)) continue;
    const target = results as unknown as Record<string, unknown>;
    for (const f of PART_FIELDS[part]) if (prev[f] !== undefined) target[f] = prev[f];
    const date = prev.partDates?.[part] ?? prev.date;
    if (PART_FIELDS[part].some((f) => prev[f] !== undefined)) results.partDates![part] = date;
    for (const [k, v] of Object.entries(prev.skipped)) if (k.split(' ')[0] === part) results.skipped[k] ??= v;
  }
}

function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

function loadAddon(): NativeAddon | string {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require('../src/datapath/native') as { native: NativeAddon }).native;
  } catch (e) {
    return `native addon not loadable (npm run build:native): ${(e as Error).message.split('\n')[0]}`;
  }
}

/** Load the object once: a program the verifier rejects is reported, not run. */
function probeObject(addon: NativeAddon, object: string): string | null {
  try {
    addon.openObject(object, {}).close();
    return null;
  } catch (e) {
    return `${path.relative(REPO_ROOT, object)} does not load: ${(e as Error).message.split('\n')[0]}`;
  }
}

function commandLine(argv: string[]): string {
  const args = argv.length ? ` ${argv.join(' ')}` : '';
  return process.env.npm_lifecycle_event === 'bench'
    ? `npm run bench${args ? ` --${args}` : ''}`
    : `node dist/bench/run.js${args}`;
}

function printTables(r: BenchResults): void {
  const rows: string[][] = [['variant', 'conn/s', 'x bare', 'Gbit/s', 'x bare']];
  for (const v of netVariantOrder(r)) {
    rows.push([
      v,
      String(Math.round(r.crr[v] ?? NaN)),
      ratio(r.crr[v] ?? NaN, r.crr.bare ?? NaN).toFixed(2),
      (r.throughput[v] ?? NaN).toFixed(2),
      ratio(r.throughput[v] ?? NaN, r.throughput.bare ?? NaN).toFixed(2),
    ]);
  }
  for (const [v, p] of Object.entries(r.crrPaired ?? {}))
    rows.push([`${v} (${p.pairs.length} tight pairs)`, '', p.ratio.toFixed(3), '', '']);
  if (r.pkt) {
    rows.push([], ['per-packet', 'ns', 'x empty', '', '']);
    for (const c of r.pkt.cases)
      rows.push([`${c.config} v${c.family} ${c.flow}`, c.ns.toFixed(1), c.ratioToEmpty.toFixed(2), '', '']);
  }
  if (r.tunnel) rows.push([], ...tunnelRows(r.tunnel));
  if (r.localDelivery) rows.push([], ...localDeliveryRows(r.localDelivery));
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  for (const row of rows)
    console.log(row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  '));
  console.log('');
  for (const t of r.targets) {
    const verdict = t.pass === null ? 'NOT RUN' : t.pass ? 'PASS' : 'FAIL';
    console.log(
      `${verdict.padEnd(7)} ${t.description}: ${t.value === null ? 'n/a' : t.value.toFixed(2)} ${t.unit} (${t.op} ${t.limit})`,
    );
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const { values } = parseArgs({
    args: argv,
    options: { quick: { type: 'boolean', default: false }, only: { type: 'string' }, object: { type: 'string' } },
  });
  const quick = values.quick ?? false;
  const only = new Set<Part>(values.only ? (values.only.split(',') as Part[]) : PARTS);
  for (const p of only)
    if (!PARTS.includes(p)) throw new Error(`parse --only: unknown part "${p}" (${PARTS.join(', ')})`);
  const object = path.resolve(values.object ?? NETFENCE_OBJECT);
  const rounds = quick ? 3 : 5;
  const started = Date.now();
  const skipped: Record<string, string> = {};

  const results: BenchResults = {
    version: 1,
    date: new Date().toISOString(),
    command: commandLine(argv),
    quick,
    rounds,
    machine: { kernel: os.release(), cpus: os.cpus().length, node: process.version },
    crr: {},
    throughput: {},
    samples: { crr: {}, throughput: {} },
    skipped,
    partDates: {},
    targets: [],
    durationS: 0,
  };

  const addon = loadAddon();
  const isRoot = process.getuid?.() === 0;
  const datapathMissing =
    typeof addon === 'string'
      ? addon
      : !existsSync(object)
        ? `${path.relative(REPO_ROOT, object)} not built (make -C bpf)`
        : probeObject(addon, object);
  const helpersMissing =
    existsSync(EMPTY_OBJECT) && existsSync(CRR_BINARY) ? null : 'bench helpers not built (make -C bench)';

  if (only.has('pkt')) {
    const why = !isRoot ? 'needs root' : (helpersMissing ?? datapathMissing);
    if (why) skipped.pkt = why;
    else {
      try {
        // A sample takes milliseconds: four times the rounds cost seconds and outvote the host's slow spells.
        results.pkt = await runPkt(addon as NativeAddon, {
          object,
          rounds: rounds * 4,
          repeat: quick ? 100000 : 200000,
          log,
        });
      } catch (e) {
        skipped.pkt = `failed: ${(e as Error).message.split('\n')[0]}`;
        log(skipped.pkt);
      }
    }
  }

  if (only.has('net')) {
    const why = !isRoot ? 'needs root' : helpersMissing;
    if (why) skipped.net = why;
    else {
      const skipEngines: Partial<Record<Engine, string>> = {};
      if (datapathMissing) {
        skipEngines.netfence = datapathMissing;
        skipped['net netfence variants'] = datapathMissing;
      }
      try {
        const net = await runNet({
          object,
          rounds,
          crrSeconds: quick ? 2 : 5,
          iperfSeconds: quick ? 1 : 3,
          // the target reads the median of the pairs: its error shrinks with their number
          // (16 pairs left ~1.5 % either way at this host's noise)
          pairs: quick ? 6 : 32,
          pairSeconds: quick ? 1 : 2,
          ruleCounts: [0, 100, 1000, 10000],
          skipEngines,
          addon: typeof addon === 'string' ? undefined : addon,
          log,
        });
        results.crr = net.crr;
        results.throughput = net.throughput;
        results.samples = net.samples;
        results.programCost = net.programCost;
        results.crrPaired = net.crrPaired;
      } catch (e) {
        skipped.net = `failed: ${(e as Error).message.split('\n')[0]}`;
        log(skipped.net);
      }
    }
  }

  if (only.has('control')) {
    try {
      results.control = await runControl({ rounds, quick, log });
    } catch (e) {
      skipped.control = `failed: ${(e as Error).message.split('\n')[0]}`;
      log(skipped.control);
    }
  }

  if (only.has('apply')) {
    const why = typeof addon === 'string' ? addon : datapathMissing;
    if (why) skipped.apply = why;
    else {
      try {
        results.apply = await runApply({ rounds: quick ? 1 : 3, log });
      } catch (e) {
        skipped.apply = `failed: ${(e as Error).message.split('\n')[0]}`;
        log(skipped.apply);
      }
    }
  }

  if (only.has('scale')) {
    const why = !isRoot ? 'needs root' : datapathMissing;
    if (why) skipped.scale = why;
    else {
      try {
        results.scale = await runScale({ samples: quick ? 10 : 50, log });
      } catch (e) {
        skipped.scale = `failed: ${(e as Error).message.split('\n')[0]}`;
        log(skipped.scale);
      }
    }
  }

  if (only.has('lab')) {
    try {
      const lab = await runLab({ changes: quick ? 10 : 50, log });
      if (typeof lab === 'string') skipped.lab = lab;
      else results.lab = lab;
    } catch (e) {
      skipped.lab = `failed: ${(e as Error).message.split('\n')[0]}`;
      log(skipped.lab);
    }
  }

  if (only.has('tunnel')) {
    const why = !isRoot ? 'needs root' : (helpersMissing ?? datapathMissing);
    if (why) skipped.tunnel = why;
    else {
      try {
        const tunnel = await runTunnel({ object, rounds, crrSeconds: quick ? 2 : 5, queries: 1000, log });
        if (typeof tunnel === 'string') skipped.tunnel = tunnel;
        else results.tunnel = tunnel;
      } catch (e) {
        skipped.tunnel = `failed: ${(e as Error).message.split('\n')[0]}`;
        log(skipped.tunnel);
      }
    }
  }

  if (only.has('cni')) {
    if (!isRoot) skipped.cni = 'needs root';
    else {
      try {
        const cni = await runCni({ pods: quick ? 20 : 100, log });
        if (typeof cni === 'string') skipped.cni = cni;
        else results.cni = cni;
      } catch (e) {
        skipped.cni = `failed: ${(e as Error).message.split('\n')[0]}`;
        log(skipped.cni);
      }
    }
  }

  if (only.has('churn')) {
    const why = !isRoot ? 'needs root' : datapathMissing;
    if (why) skipped.churn = why;
    else {
      try {
        results.churn = await runChurnBench(addon as NativeAddon, { rate: 100, seconds: quick ? 10 : 60, log });
      } catch (e) {
        skipped.churn = `failed: ${(e as Error).message.split('\n')[0]}`;
        log(skipped.churn);
      }
    }
  }

  if (only.has('localdelivery')) {
    const why = !isRoot ? 'needs root' : (helpersMissing ?? datapathMissing);
    if (why) skipped.localdelivery = why;
    else {
      try {
        results.localDelivery = await runLocalDelivery({
          object,
          pairs: quick ? 3 : 8,
          pairSeconds: quick ? 1 : 2,
          defaultOn: defaultLocalDelivery(),
          log,
        });
      } catch (e) {
        skipped.localdelivery = `failed: ${(e as Error).message.split('\n')[0]}`;
        log(skipped.localdelivery);
      }
    }
  }

  results.durationS = (Date.now() - started) / 1000;
  for (const part of only) results.partDates![part] = results.date;
  const resultsDir = path.join(REPO_ROOT, 'bench', 'results');
  keepOtherParts(results, only, path.join(resultsDir, 'latest.json'));
  results.targets = evaluateTargets(results);
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(path.join(resultsDir, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeReport(results, path.join(REPO_ROOT, 'bench'));
  printTables(results);
  for (const [k, v] of Object.entries(skipped)) console.log(`skipped ${k}: ${v}`);
  console.log(`\nwrote bench/results/latest.json and bench/REPORT.md (${results.durationS.toFixed(0)} s)`);
}

main().catch((e: Error) => {
  process.stderr.write(`bench: ${e.message}\n`);
  process.exit(1);
});
