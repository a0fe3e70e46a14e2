// Fast checks of the benchmark harness: the arithmetic (median, percentile, ratio),
// the interleaved schedule, target evaluation, and the report generator on a fixture.
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { evaluateTargets, renderChart, writeReport, countLabel } from '../../bench/report';
import { interleave, median, percentile, ratio, runInterleaved, prng } from '../../bench/stats';
import { buildPolicy, syntheticPrefixes } from '../../bench/policy';
import { forwardRules, netVariants, pairedVariants, roundOrder } from '../../bench/net';
import { toCidr } from '../../src/model/ip';
import { mappedPrefix } from '../../src/wire/addr';
import type { BenchResults } from '../../bench/types';
import type { ScaleChildResult } from '../../bench/scale-child';
import { writeStateDir } from '../../bench/statedir';
import { loadStateDir } from '../../src/sources/directory';

test('median of odd and even sample counts, unsorted input', (t) => {
  t.is(median([5, 1, 3]), 3);
  t.is(median([4, 1, 3, 2]), 2.5);
  t.is(median([7]), 7);
  t.throws(() => median([]), { message: /no samples/ });
});

test('percentile is nearest-rank', (t) => {
  const xs = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1
  t.is(percentile(xs, 50), 50);
  t.is(percentile(xs, 99), 99);
  t.is(percentile(xs, 100), 100);
  t.is(percentile([3, 1, 2], 99), 3);
});

test('ratio to a baseline, NaN without one', (t) => {
  t.is(ratio(95, 100), 0.95);
  t.true(Number.isNaN(ratio(1, 0)));
});

test('interleave runs every variant once per round, in order', (t) => {
  const order = interleave(['A', 'B', 'C'], 2).map((s) => `${s.round}${s.variant}`);
  t.deepEqual(order, ['0A', '0B', '0C', '1A', '1B', '1C']);
  t.throws(() => interleave(['A'], 0), { message: /positive integer/ });
});

test('runInterleaved measures A B A B and groups samples per variant', async (t) => {
  const seen: string[] = [];
  const samples = await runInterleaved([{ name: 'A' }, { name: 'B' }], 3, (v, round) => {
    seen.push(v.name);
    return v.name === 'A' ? round : 10 + round;
  });
  t.deepEqual(seen, ['A', 'B', 'A', 'B', 'A', 'B']);
  t.deepEqual(samples, { A: [0, 1, 2], B: [10, 11, 12] });
  await t.throwsAsync(
    runInterleaved([{ name: 'A' }, { name: 'A' }], 1, () => 0),
    { message: /duplicate/ },
  );
});

test('prng is deterministic', (t) => {
  const a = prng(7);
  const b = prng(7);
  t.deepEqual([a(), a(), a()], [b(), b(), b()]);
});

test('synthetic prefixes are distinct, valid and non-overlapping', (t) => {
  for (const fam of [4, 6] as const) {
    const ps = syntheticPrefixes(fam, 2000, 3);
    t.is(new Set(ps).size, 2000);
    // Slot = the /25 (IPv4) or /64 (IPv6) a prefix lies in; one prefix per slot.
    const slot = (a: Buffer): string =>
      fam === 4 ? String(a.readUInt32BE(12) >>> 7) : a.subarray(0, 8).toString('hex');
    const slots = new Set(ps.map((p) => slot(mappedPrefix(toCidr(p)).addr)));
    t.is(slots.size, 2000, `IPv${fam} prefixes share a slot`);
    for (const p of ps) t.is(toCidr(p).family, fam);
  }
});

test('bench policy: prefixes spread over at most 200 rules, probes in the last rule', (t) => {
  const p = buildPolicy({ table: 3, cidrs: 1000, families: [4, 6], identities: 10, probes: ['10.200.0.1'], port: 80 });
  t.is(p.prefixes.length, 1000);
  t.is(p.cidrRules.length, 200);
  t.is(p.rules, 202);
  t.true(p.cidrRules[199].includes('10.200.0.1/32'));
  t.is(p.entries.nf_peer_cidr?.length, 1001); // + catch-all deny
  t.is(p.entries.nf_ident_exact?.length, 20);
});

test('iptables and ipset variants hold the same prefixes', (t) => {
  const ipt = forwardRules('iptables', 500);
  const set = forwardRules('ipset', 500);
  t.is(ipt.iptables.split('\n').filter((l) => l.includes('-s ')).length, 500);
  t.is(set.ipset.split('\n').filter((l) => l.startsWith('add ')).length, 500);
  t.is(set.iptables.split('\n').filter((l) => l.includes('--match-set')).length, 200);
  t.regex(ipt.iptables, /ESTABLISHED,RELATED -j ACCEPT\n-A FORWARD -s/);
  t.deepEqual(
    netVariants([0, 100]).map((v) => v.name),
    ['bare', 'emptyprog_2hooks', 'emptyprog_4hooks', 'netfence_0', 'netfence_100', 'iptables_100', 'ipset_100'],
  );
});

test('net rounds run the target comparisons back to back, odd rounds backwards', (t) => {
  const vs = netVariants([0, 100, 10000]);
  const names = (round: number): string[] => roundOrder(vs, round).map((v) => v.name);
  t.deepEqual(names(0).slice(0, 3), ['bare', 'netfence_10k', 'ipset_10k']);
  t.deepEqual(names(1), [...names(0)].reverse());
  t.is(new Set(names(0)).size, vs.length);
});

function fixture(): BenchResults {
  const r: BenchResults = {
    version: 1,
    date: '2025-01-01T00:00:00.000Z',
    command: 'npm run bench -- --quick',
    quick: true,
    rounds: 3,
    machine: { kernel: '6.18', cpus: 2, node: 'v20' },
    crr: { bare: 10000, netfence_0: 9900, netfence_10k: 9900, iptables_10k: 2000, ipset_10k: 7000 },
    throughput: { bare: 20, netfence_10k: 19.5, iptables_10k: 15 },
    samples: { crr: {}, throughput: {} },
    programCost: {
      netfence_10k: { connections: 20000, runsPerConn: 8, nsPerConn: 4800, cpuShare: 0.044 },
      emptyprog_4hooks: { connections: 21000, runsPerConn: 20, nsPerConn: 1200, cpuShare: 0.011 },
    },
    pkt: {
      repeat: 100000,
      rounds: 12,
      emptyNs: { 'v4/new': 10, 'v4/established': 10, 'v6/new': 10, 'v6/established': 10 },
      cases: (['cidr_0', 'cidr_100', 'cidr_100k'] as const).flatMap((config, i) =>
        ([4, 6] as const).flatMap((family) =>
          (['new', 'established'] as const).map((flow) => ({
            config,
            cidrs: [0, 100, 100000][i],
            identities: 10,
            family,
            flow,
            ns: flow === 'new' ? 100 + 50 * i : 60 + i,
            ratioToEmpty: 0,
            samples: [],
          })),
        ),
      ),
    },
    skipped: { lab: 'agent not built' },
    targets: [],
    durationS: 100,
  };
  r.targets = evaluateTargets(r);
  return r;
}

test('targets: pass, fail and not run', (t) => {
  const byName = Object.fromEntries(fixture().targets.map((x) => [x.name, x]));
  t.is(byName.crr_10k_vs_bare.value, 0.99);
  t.true(byName.crr_10k_vs_bare.pass);
  t.is(byName.crr_10k_vs_ipset.pass, true); // 9900 / 7000 = 1.41
  t.is(byName.pkt_established_100k_vs_0.value, 62 / 60);
  t.true(byName.pkt_established_100k_vs_0.pass);
  t.is(byName.pkt_new_100k_vs_100.value, 200 / 150);
  // absolute per-packet limits read the worst case of the CIDR series, both families
  t.is(byName.pkt_established_ns.value, 62);
  t.true(byName.pkt_established_ns.pass);
  t.is(byName.pkt_new_ns.value, 200);
  t.true(byName.pkt_new_ns.pass);
  // 4800 ns / the empty program's 1200 ns on the same hooks = 4x, over the 2x limit
  t.is(byName.program_time_10k_vs_floor.value, 4);
  t.false(byName.program_time_10k_vs_floor.pass);
  t.is(byName.compile_time.pass, null);
  t.is(byName.lab_policy_enforced_p99.pass, null);
});

test('targets: the connection rate against bare reads the tight pairs where measured', (t) => {
  const r = fixture();
  // the round medians say 0.99; the pairs (ratios 0.9, 0.96, 0.92) say 0.92
  r.crrPaired = {
    netfence_10k: {
      pairs: [
        { bare: 10000, variant: 9000 },
        { bare: 5000, variant: 4800 },
        { bare: 12500, variant: 11500 },
      ],
      ratio: 0.92,
    },
  };
  const crr = evaluateTargets(r).find((x) => x.name === 'crr_10k_vs_bare')!;
  t.is(crr.value, 0.92);
  t.false(crr.pass);
  t.regex(crr.description, /median of 3 tight pairs/);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nf-bench-report-'));
  try {
    writeReport({ ...r, targets: evaluateTargets(r) }, dir);
    t.regex(
      readFileSync(path.join(dir, 'REPORT.md'), 'utf8'),
      /\| netfence_10k \| 3 \| 0\.920 \| 0\.900-0\.960 \| 10,000 \| 9,000 \|/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('net: the empty-program floor and the largest netfence variant are measured in tight pairs', (t) => {
  t.deepEqual(
    pairedVariants(netVariants([0, 100, 10000])).map((v) => v.name),
    ['emptyprog_2hooks', 'netfence_10k'],
  );
  t.deepEqual(
    pairedVariants(netVariants([0, 100], { netfence: 'not built' })).map((v) => v.name),
    ['emptyprog_2hooks'],
  );
});

test('report generator writes REPORT.md and a well-formed SVG', (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nf-bench-report-'));
  try {
    const r = fixture();
    writeReport(r, dir);
    const md = readFileSync(path.join(dir, 'REPORT.md'), 'utf8');
    t.regex(md, /^# netfence benchmarks/);
    t.regex(md, /npm run bench -- --quick/);
    t.regex(md, /\| netfence_10k \| 9,900 \| 0\.99 \|/);
    t.regex(md, /\| netfence_10k \| 8\.0 \| 4,800 ns \| 4\.4 % \|/, 'program time per connection');
    t.regex(
      md,
      /connection rate, netfence 10k rules \/ bare \(ratio of round medians\) \| 0\.990 x \| >= 0\.98 x \| PASS/,
    );
    t.regex(
      md,
      /program time per connection, netfence 10k rules \/ emptyprog_4hooks \(kernel run statistics, same run\) \| 4\.000 x \| <= 2 x \| FAIL/,
    );
    t.regex(md, /the median of 12 interleaved rounds/);
    t.regex(md, /NOT RUN/);
    t.regex(md, /- lab: agent not built/);
    t.regex(md, /!\[[^\]]*\]\(chart\.svg\)/);
    const svg = readFileSync(path.join(dir, 'chart.svg'), 'utf8');
    t.regex(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    t.true(svg.trimEnd().endsWith('</svg>'));
    // Every element is closed: self-closing or with a matching end tag.
    const open = (svg.match(/<(?!\/)[a-z]+[^>]*[^/]>/g) ?? []).length;
    const close = (svg.match(/<\/[a-z]+>/g) ?? []).length;
    t.is(open, close);
    t.false(/NaN|undefined/.test(svg));
    t.is(renderChart(r), svg);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('count labels', (t) => {
  t.deepEqual([0, 100, 1000, 10000, 100000].map(countLabel), ['0', '100', '1k', '10k', '100k']);
});

test('apply: targets and report read the 20k-policy apply as a figure and a ratio to its target', (t) => {
  const r = fixture();
  r.apply = {
    policies: 20001,
    files: 201,
    bytes: 8_671_954,
    errors: 0,
    applyMs: 2400,
    applySamplesMs: [2300, 2400, 2600],
    loadMs: 1800,
    compileMs: 500,
    writeMs: 100,
    reloadMs: 900,
    peakRssMb: 320,
    mapEntries: { nf_peer_cidr: 280 },
  };
  const byName = Object.fromEntries(evaluateTargets(r).map((x) => [x.name, x]));
  t.like(byName.apply_20k_policies_time, { value: 2.4, limit: 3, pass: true });
  t.regex(byName.apply_20k_policies_time.description, /a 20,000-policy state directory \(8\.7 MB\)/);
  t.like(byName.apply_20k_policies_rss, { value: 320, limit: 300, pass: false });
  t.is(evaluateTargets(fixture()).find((x) => x.name === 'apply_20k_policies_time')!.pass, null, 'not run');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nf-bench-report-'));
  try {
    writeReport({ ...r, targets: evaluateTargets(r) }, dir);
    const md = readFileSync(path.join(dir, 'REPORT.md'), 'utf8');
    t.regex(md, /\| files to map entries \(median of 3\) \| 2\.40 s \| 0\.80 x 3 s \|/);
    t.regex(md, /\| peak RSS \| 320 MB \| 1\.07 x 300 MB \|/);
    t.regex(md, /peak RSS of that apply \| 320\.00 MB \| <= 300 MB \| FAIL/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('apply: the generated state directory holds the policies it claims and loads without errors', (t) => {
  const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'nf-bench-statedir-')), 'state');
  try {
    const bytes = writeStateDir(dir, { namespaces: 3, policiesPerNamespace: 8, podsPerNamespace: 4, nodes: 2 });
    t.true(bytes > 0);
    const s = loadStateDir(dir);
    t.deepEqual(s.errors, []);
    t.is(s.policies.filter((p) => p.tier === 'netpol').length, 24);
    t.is(s.pods.length, 12);
    t.is(
      new Set(s.pods.map((p) => p.name)).size,
      12,
      'pod names are unique across namespaces (bench endpoints are keyed by them)',
    );
    t.true(
      s.policies.some((p) =>
        p.rules.some(
          (r) => r.direction === 'egress' && r.peers.some((x) => x.kind === 'cidr' && x.except.length === 1),
        ),
      ),
    );
  } finally {
    rmSync(path.dirname(dir), { recursive: true, force: true });
  }
});

test('scale: targets and report read the 100k-pod figures; the directory holds its cluster policies and capacity', (t) => {
  const child = (pods: number, extra: Partial<ScaleChildResult> = {}): ScaleChildResult => ({
    pods,
    namespaces: pods / 10,
    policies: pods / 5 + 11,
    localEndpoints: 100,
    errors: 0,
    applyMs: 4200,
    loadMs: 3000,
    compileMs: 1000,
    writeMs: 200,
    peakRssMb: 900,
    mapEntries: { nf_ident_exact: pods + 1000 },
    ...extra,
  });
  const r = fixture();
  r.scale = {
    bytes: 41_800_000,
    files: child(100_000, {
      reload: { ms: 900, filesParsed: 1, files: 10_003 },
      steadyRssMb: 700,
      podAdd: { updates: 3, samplesMs: [20, 30, 40] },
      policyChangePods: 1000,
      policyChange: { updates: 4700, samplesMs: [150, 250] },
    }),
    api: child(100_000, { applyMs: 6000, peakRssMb: 1100 }),
    tenth: child(10_000, { steadyRssMb: 140, podAdd: { updates: 3, samplesMs: [5] } }),
    podAddP99Ms: 40,
    policyChangeP99Ms: 250,
  };
  const byName = Object.fromEntries(evaluateTargets(r).map((x) => [x.name, x]));
  t.like(byName.scale_files_time, { value: 4.2, limit: 5, pass: true });
  t.like(byName.scale_api_time, { value: 6, pass: false });
  t.like(byName.scale_api_rss, { value: 1100, limit: 1024, pass: false });
  t.like(byName.scale_reload_parses, { value: 1, pass: true });
  t.like(byName.steady_rss_10k, { value: 140, limit: 150, pass: true });
  t.like(byName.scale_pod_add_updates_constant, { value: 0, pass: true });
  t.like(byName.scale_policy_change_p99, { value: 250, limit: 200, pass: false });
  t.regex(byName.scale_policy_change_p99.description, /touching 1,000 pods/);
  t.is(evaluateTargets(fixture()).find((x) => x.name === 'scale_files_time')!.pass, null, 'not run');

  const dir = mkdtempSync(path.join(os.tmpdir(), 'nf-bench-scale-'));
  try {
    writeReport({ ...r, targets: evaluateTargets(r) }, dir);
    t.regex(
      readFileSync(path.join(dir, 'REPORT.md'), 'utf8'),
      /\| Kubernetes source, 100k pods \| 6\.00 s \(3,000 \/ 1,000 \/ 200 ms\) \| 1,100 MB \|/,
    );
    const state = path.join(dir, 'state');
    writeStateDir(state, {
      namespaces: 20,
      policiesPerNamespace: 2,
      podsPerNamespace: 10,
      nodes: 4,
      clusterPolicies: 10,
      identities: 131072,
    });
    const s = loadStateDir(state);
    t.deepEqual(s.errors, []);
    t.is(s.config.capacity.identities, 131072);
    const cnp0 = s.policies.find((p) => p.ref.name === 'cnp-0')!;
    t.is(cnp0.tier, 'admin');
    // Team 0's namespaces are ns-0 and ns-10: one subject pod in each.
    const teams = new Map(s.namespaces.map((n) => [n.name, n.labels.team]));
    t.is(s.pods.filter((p) => teams.get(p.namespace) === 'team-0' && p.labels.app === 'app-0').length, 2);
    t.is(
      s.pods.filter((p) => teams.get(p.namespace) === 'team-1' && p.labels.app === 'app-11').length,
      2,
      'an odd team: app-(10 + t)',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
