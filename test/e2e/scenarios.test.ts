// Runs every test/e2e/scenarios/*.yaml against a real lab (agents on) and cross-checks
// `netfence trace --matrix --json` with both engines against the same expectations.
// NETFENCE_E2E_CHECKS=lab,model,bpf (default: all) narrows what is checked;
// NETFENCE_E2E_ONLY=<file stem> runs one scenario.
import test from 'ava';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadStateDir } from '../../src/sources/directory';
import { waitForAgents } from '../../src/lab/barrier';
import { labScript, run } from '../../src/lab/exec';
import { labDown, labNameFor, labUp } from '../../src/lab/lifecycle';
import {
  fabricCounters,
  matrixPairs,
  parsePort,
  probePairs,
  resolveEndpoint,
  type PairResult,
  type ProbePair,
} from '../../src/lab/probe';
import { cliMain } from '../../src/lab/processes';
import type { LabState } from '../../src/lab/state';
import { writeAtomic } from '../../src/lab/workdir';
import { HeldConnection } from './hold';
import { expected, loadScenario, WorkingState, type Scenario, type Step } from './scenario';

const ROOT = resolve(__dirname, '../../..');
const SCENARIOS = join(ROOT, 'test/e2e/scenarios');
const CHECKS = new Set((process.env.NETFENCE_E2E_CHECKS ?? 'lab,model,bpf').split(','));
const ONLY = process.env.NETFENCE_E2E_ONLY;

interface TracePair {
  from: string;
  to: string;
  verdict: string;
}

async function traceMatrix(
  stateDir: string,
  port: string,
  engine: string,
  family: number,
  network?: string,
): Promise<TracePair[]> {
  const main = cliMain();
  if (!main) throw new Error('trace --matrix: dist/src/cli/main.js is not built');
  const argv = [
    process.execPath,
    main,
    'trace',
    '--state',
    stateDir,
    '--matrix',
    '--port',
    port,
    '--engine',
    engine,
    '--family',
    String(family),
    '--json',
  ];
  if (network) argv.push('--network', network);
  const { stdout } = await run(argv, undefined, 120_000);
  return (JSON.parse(stdout) as { pairs: TracePair[] }).pairs;
}

/** A loaded machine can stretch a connect past the 1 s timeout: pairs expected to connect
 *  that did not get a second try with a longer timeout. Unexpected allows are never retried. */
async function probeWithRetry(state: LabState, pairs: ProbePair[], step: Step): Promise<PairResult[]> {
  const results = await probePairs(state, pairs, { network: step.network });
  const retry = results
    .map((r, i) => ({ r, i }))
    .filter(({ r }) => r.verdict === 'deny' && expected(step.expect!, r) === 'allow');
  if (retry.length === 0) return results;
  const again = await probePairs(
    state,
    retry.map(({ i }) => pairs[i]),
    { network: step.network, timeoutMs: 3000 },
  );
  retry.forEach(({ i }, k) => (results[i] = again[k]));
  return results;
}

/** Runs tasks with at most `limit` in flight (2 cores: CLI start-up is CPU-bound). */
async function pool(tasks: (() => Promise<void>)[], limit: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length) await tasks[next++]();
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
}

class StepChecker {
  readonly mismatches: string[] = [];

  constructor(private readonly step: Step) {}

  check(what: string, got: string, want: string): void {
    if (got !== want) this.mismatches.push(`${what}: got ${got}, want ${want}`);
  }

  pairResults(source: string, results: PairResult[]): void {
    for (const r of results) {
      if (r.verdict === 'skip') continue; // SCTP in the lab: no kernel support, trace covers it
      const want = expected(this.step.expect!, r);
      const fam = r.family ? ` v${r.family}` : '';
      this.check(
        `[${source}] ${r.from}->${r.to} ${r.port}${fam}`,
        r.verdict === 'error' ? `error (${r.detail})` : r.verdict,
        want,
      );
    }
  }
}

async function runStep(
  t: { log: (...a: string[]) => void },
  scenario: Scenario,
  step: Step,
  state: LabState,
  holds: Map<string, HeldConnection>,
): Promise<string[]> {
  const plan = state.plan!;
  const checker = new StepChecker(step);
  const ports = step.ports ?? scenario.ports;
  const started = Date.now();

  for (const [id, h] of Object.entries(step.hold)) {
    const from = resolveEndpoint(plan, h.from);
    const to = resolveEndpoint(plan, h.to);
    holds.set(id, await HeldConnection.open(from.netns!, to.ips[0], parsePort(h.port).port));
  }
  for (const [id, want] of Object.entries(step.held)) {
    const held = holds.get(id);
    if (!held) throw new Error(`step ${step.name}: held "${id}" was never opened`);
    checker.check(`[lab] held connection ${id}`, await held.check(), want);
  }
  // The lab probe mostly waits on timeouts: run it alongside the trace invocations.
  const tasks: (() => Promise<void>)[] = [];
  if (step.expect && CHECKS.has('lab')) {
    tasks.push(async () =>
      checker.pairResults('lab', await probeWithRetry(state, matrixPairs(plan, ports, step.network), step)),
    );
  }
  if (step.expect && !step.noTrace) {
    // IPv6 is traced when the table says something about it; IPv4 always.
    const families = step.expect.some(([k]) => / v6\s*$/.test(k)) ? [4, 6] : [4];
    const pods = new Set(plan.pods.map((p) => p.key));
    for (const engine of ['model', 'bpf'].filter((e) => CHECKS.has(e))) {
      for (const port of ports) {
        for (const family of families) {
          tasks.push(async () => {
            const pairs = await traceMatrix(state.agentStateDir, port, engine, family, step.network);
            const results: PairResult[] = pairs
              .filter((p) => pods.has(p.from) && pods.has(p.to))
              .map((p) => ({
                from: p.from,
                to: p.to,
                port,
                family: family as 4 | 6,
                verdict: p.verdict as PairResult['verdict'],
              }));
            if (results.length === 0) checker.check(`[trace ${engine}] ${port} v${family}`, 'no pairs', 'pairs');
            checker.pairResults(`trace ${engine}`, results);
          });
        }
      }
    }
  }
  await pool(tasks, 3);
  if (step.probes.length > 0 && CHECKS.has('lab')) {
    const results = await probePairs(
      state,
      step.probes.map(({ from, to, port }) => ({ from, to, port })),
    );
    results.forEach((r, i) => checker.check(`[lab] ${r.from}->${r.to} ${r.port}`, r.verdict, step.probes[i].expect));
  }
  for (const tn of CHECKS.has('lab') ? step.tunnel : []) {
    const node = plan.pods.find((p) => p.key === tn.from)?.node ?? tn.from.replace(/^node\//, '');
    const before = (await fabricCounters(state)).get(`hairpin:${node}`) ?? 0;
    const [r] = await probePairs(state, [{ from: tn.from, to: tn.to, port: tn.port }]);
    const after = (await fabricCounters(state)).get(`hairpin:${node}`) ?? 0;
    checker.check(`[lab] ${tn.from}->${tn.to} ${tn.port} connects`, r.verdict, 'allow');
    checker.check(
      `[lab] ${tn.from}->${tn.to} ${tn.port} hairpins through the fabric`,
      String(after > before),
      String(tn.hairpin),
    );
  }
  for (const u of CHECKS.has('lab') ? step.udpLoss : []) {
    const from = resolveEndpoint(plan, u.from);
    const to = resolveEndpoint(plan, u.to);
    const { port } = parsePort(u.port);
    const argv = [
      'ip',
      'netns',
      'exec',
      from.netns!,
      process.execPath,
      labScript('client'),
      'udpflood',
      to.ips[0],
      String(port),
      String(u.count),
      '2000',
    ];
    const { stdout } = await run(argv);
    const { sent, received } = JSON.parse(stdout) as { sent: number; received: number };
    checker.check(`[lab] ${u.from}->${u.to} ${u.port} UDP replies`, `${received}/${sent}`, `${sent}/${sent}`);
  }
  t.log(`step "${step.name}": ${checker.mismatches.length} mismatches (${Date.now() - started} ms)`);
  return checker.mismatches;
}

const files = existsSync(SCENARIOS)
  ? readdirSync(SCENARIOS)
      .filter((f) => f.endsWith('.yaml'))
      .sort()
  : [];
for (const file of files.filter((f) => !ONLY || f.replace(/\.yaml$/, '') === ONLY)) {
  test.serial(`scenario ${file}`, async (t) => {
    t.timeout(5 * 60_000);
    const scenario = loadScenario(join(SCENARIOS, file));
    // A fixed directory per scenario: its lab name is stable, so a crashed run is cleaned up by the next.
    const dir = join('/tmp/netfence-e2e', file.replace(/\.yaml$/, ''));
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const ws = new WorkingState(scenario.objects);
    writeAtomic(join(dir, 'state.yaml'), ws.render());
    const agents = CHECKS.has('lab');
    const holds = new Map<string, HeldConnection>();
    let state: LabState | undefined;
    try {
      state = await labUp(loadStateDir(dir), {
        stateDir: dir,
        agents,
        workingCopy: (wd) => writeAtomic(join(wd, 'state.yaml'), ws.render()),
      });
      const failures: string[] = [];
      if (agents && state.agents.length === 0)
        failures.push('lab: no agents (netfence agent is not built), nothing enforces the policies');
      for (const step of scenario.steps) {
        const changes = step.apply.length + step.delete.length + step.relabel.length > 0;
        ws.applyStep(step);
        if (changes) {
          writeAtomic(join(state.agentStateDir, 'state.yaml'), ws.render());
          await waitForAgents(state);
        }
        const mismatches = await runStep(t, scenario, step, state, holds);
        failures.push(...mismatches.map((m) => `${step.name}: ${m}`));
      }
      if (failures.length > 0) t.fail(`${scenario.name}: ${failures.length} mismatches\n${failures.join('\n')}`);
      else t.pass();
    } finally {
      for (const h of holds.values()) h.close();
      await labDown(labNameFor(dir));
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('scenario files exist', (t) => {
  t.true(files.length > 0, `no scenarios in ${SCENARIOS}`);
});
