// `netfence trace`: the verdict for one packet, or the matrix of every ordered pod
// pair, by the reference model or by the real BPF program (BPF_PROG_TEST_RUN).
import type { Command } from 'commander';
import type { Family } from '../model/ip';
import type { Snapshot } from '../model/types';
import { evaluate, type DirectionVerdict, type Verdict } from '../reference/evaluate';
import { matrixPairs, parsePortSpec, resolvePair, type TraceEngine } from '../trace/probe';
import { loadState } from './state';

interface Flags {
  state: string;
  from?: string;
  to?: string;
  port: string;
  network?: string;
  engine: string;
  matrix?: boolean;
  family: string;
  json?: boolean;
}

/** The engine, and how to release it. The bpf engine loads the addon only when asked. */
async function openEngine(name: string, s: Snapshot): Promise<{ engine: TraceEngine; close(): void }> {
  if (name === 'model') return { engine: { name: 'model', evaluate: (p) => evaluate(s, p) }, close: () => undefined };
  if (name !== 'bpf') throw new Error(`trace: --engine "${name}": expected bpf or model`);
  const { native } = await import('../datapath/native');
  const { BpfEngine } = await import('../trace/bpf-engine');
  const bpf = BpfEngine.open(native);
  try {
    for (const e of bpf.load(s)) process.stderr.write(`warning: ${e}\n`);
  } catch (e) {
    bpf.close();
    throw e;
  }
  return { engine: { name: 'bpf', evaluate: (p) => bpf.evaluate(p) }, close: () => bpf.close() };
}

function side(v: DirectionVerdict) {
  return { verdict: v.verdict, tier: v.tier, policy: v.policy ?? null, rule: v.rule ?? null };
}

function sideText(dir: string, who: string, v: DirectionVerdict): string {
  const by = v.tier === 'default' ? 'default allow' : `${v.tier}: ${v.policy ? `${v.policy} ` : ''}${v.rule ?? ''}`;
  return `${dir.padEnd(7)} at ${who}: ${v.verdict.padEnd(5)} (${by})`;
}

function one(f: Flags, s: Snapshot, engine: TraceEngine): string {
  if (!f.from || !f.to) throw new Error('trace: --from and --to are required (or --matrix)');
  const { protocol, port } = parsePortSpec(f.port);
  const { src, dst } = resolvePair(s, f.from, f.to, f.network);
  const v: Verdict = engine.evaluate({ src, dst, protocol, dstPort: port, network: f.network });
  if (f.json)
    return JSON.stringify({
      verdict: v.verdict,
      engine: engine.name,
      egress: side(v.egress),
      ingress: side(v.ingress),
    });
  return [
    `${f.from} (${src}) -> ${f.to} (${dst}) ${f.port}${f.network ? ` on ${f.network}` : ''}: ${v.verdict.toUpperCase()} [${engine.name}]`,
    `  ${sideText('egress', f.from, v.egress)}`,
    `  ${sideText('ingress', f.to, v.ingress)}`,
  ].join('\n');
}

function matrix(f: Flags, s: Snapshot, engine: TraceEngine): string {
  const { protocol, port } = parsePortSpec(f.port);
  if (f.family !== '4' && f.family !== '6') throw new Error(`trace: --family "${f.family}": expected 4 or 6`);
  const pairs = matrixPairs(s, Number(f.family) as Family, f.network).map((p) => ({
    from: p.from,
    to: p.to,
    verdict: engine.evaluate({ src: p.src, dst: p.dst, protocol, dstPort: port, network: f.network }).verdict,
  }));
  if (f.json) return JSON.stringify({ pairs });
  const names = [...new Set(pairs.flatMap((p) => [p.from, p.to]))].sort();
  const verdicts = new Map(pairs.map((p) => [`${p.from} ${p.to}`, p.verdict]));
  const width = Math.max(4, ...names.map((n) => n.length)) + 1;
  const rows = names.map(
    (from) =>
      from.padEnd(width) +
      names
        .map((to) => (from === to ? '-' : verdicts.get(`${from} ${to}`) === 'allow' ? '.' : 'X').padEnd(width))
        .join(''),
  );
  return [
    `${f.port} [${engine.name}]  rows: from, columns: to  (. allow, X deny)`,
    ' '.repeat(width) + names.map((n) => n.padEnd(width)).join(''),
    ...rows,
  ].join('\n');
}

export function register(program: Command): void {
  program
    .command('trace')
    .description('verdict of one packet (or every pod pair with --matrix) by the model or the real BPF program')
    .requiredOption('--state <dir>', 'state directory')
    .option('--from <end>', 'source: ns/pod, node/NAME or an IP')
    .option('--to <end>', 'destination: ns/pod, node/NAME or an IP')
    .requiredOption('--port <N/PROTO>', 'destination port and protocol: 80/TCP, 53/UDP, 9/SCTP, ICMP')
    .option('--network <ns/nad>', 'secondary network (MultiNetworkPolicy)')
    .option('--engine <bpf|model>', 'bpf: the compiled program via BPF_PROG_TEST_RUN; model: the reference', 'model')
    .option('--matrix', 'every ordered pair of distinct pods')
    .option('--family <4|6>', 'address family of --matrix', '4')
    .option('--json', 'print JSON')
    .action(async (f: Flags) => {
      const s = loadState(f.state);
      const { engine, close } = await openEngine(f.engine, s);
      try {
        const out = f.matrix ? matrix(f, s, engine) : one(f, s, engine);
        process.stdout.write(`${out}\n`);
      } finally {
        close();
      }
    });
}
