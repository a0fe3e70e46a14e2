// The README's main job: `netfence lab demo` on examples/demo builds the lab, starts the
// agents, and prints the truth tables before and after the example policies. Before, every
// pair connects; after, every cell of every table is what the reference evaluator says for
// the merged state (both address families), and `lab down` removes the lab.
import test from 'ava';
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../src/lab/exec';
import { labNameFor } from '../../src/lab/lifecycle';
import { listNetns } from '../../src/lab/state';

const REPO = path.resolve(__dirname, '../../..');
const CLI = path.join(REPO, 'dist/src/cli/main.js');
const PREFIX = 'nfdm-';

type Tables = Map<string, Map<string, string>>; // "5432/TCP IPv4" -> "from>to" -> cell

/** The truth tables of one section of the demo's output. */
function parseTables(section: string): Tables {
  const tables: Tables = new Map();
  const lines = section.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const head = /^(\d+\/\w+ IPv[46]) /.exec(lines[i]);
    if (!head) continue;
    const rows: string[][] = [];
    for (let j = i + 2; j < lines.length && lines[j].trim() !== '' && !/^\d+\//.test(lines[j]); j++)
      rows.push(lines[j].trim().split(/\s+/));
    const cells = new Map<string, string>();
    rows.forEach((r, from) => rows.forEach((c, to) => from !== to && cells.set(`${r[0]}>${c[0]}`, r[1 + to])));
    tables.set(head[1], cells);
  }
  return tables;
}

test('lab demo: all open without policies; with them, every cell as the reference evaluator says', async (t) => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'nf-demo-'));
  const state = path.join(work, 'demo');
  cpSync(path.join(REPO, 'examples/demo'), state, { recursive: true });
  t.teardown(async () => {
    await run([process.execPath, CLI, 'lab', 'down', '--state', state, '--prefix', PREFIX], undefined, 120_000).catch(
      () => undefined,
    );
    rmSync(work, { recursive: true, force: true });
  });

  const { stdout } = await run(
    [process.execPath, CLI, 'lab', 'demo', '--state', state, '--prefix', PREFIX],
    undefined,
    240_000,
  );
  const at = stdout.indexOf('== with ');
  t.true(at > 0, 'the output has a section with the policies');
  const before = parseTables(stdout.slice(0, at));
  const after = parseTables(stdout.slice(at));
  t.is(before.size, 8, '4 ports x 2 families before');
  t.deepEqual([...after.keys()], [...before.keys()]);
  for (const [name, cells] of before) t.deepEqual(new Set(cells.values()), new Set(['.']), `${name}: all open before`);

  // The reference on the same objects, merged into one state directory.
  const merged = path.join(work, 'merged');
  cpSync(state, merged, { recursive: true, filter: (p) => !p.endsWith('policies') });
  for (const f of readdirSync(path.join(state, 'policies')))
    cpSync(path.join(state, 'policies', f), path.join(merged, `policy-${f}`));
  let denied = 0;
  for (const [name, cells] of after) {
    const port = name.split(' ')[0];
    const ref = JSON.parse(
      (
        await run([
          process.execPath,
          CLI,
          'trace',
          '--state',
          merged,
          '--matrix',
          '--port',
          port,
          '--engine',
          'model',
          '--json',
        ])
      ).stdout,
    ) as {
      pairs: { from: string; to: string; verdict: string }[];
    };
    const want = new Map(ref.pairs.map((p) => [`${p.from}>${p.to}`, p.verdict === 'allow' ? '.' : 'X']));
    t.deepEqual(Object.fromEntries(cells), Object.fromEntries(want), name);
    denied += [...cells.values()].filter((c) => c === 'X').length;
  }
  t.true(denied > 0, 'the policies deny something');

  await run([process.execPath, CLI, 'lab', 'down', '--state', state, '--prefix', PREFIX], undefined, 120_000);
  const name = labNameFor(state, PREFIX);
  t.deepEqual(
    listNetns().filter((n) => n.startsWith(`${name}-`)),
    [],
    'lab down removes every namespace',
  );
});
