// The fast YAML reader (src/sources/yaml-fast.ts) against js-yaml: whatever it reads, it
// reads as js-yaml does (values and types), it takes the benchmark's manifests whole, and
// it gives up on everything else: on the repository's manifests, on a seeded sweep of
// their mutations and on the shapes it leaves to js-yaml by design.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CORE_SCHEMA, load } from 'js-yaml';
import { writeStateDir } from '../../bench/statedir';
import { fastLoad } from '../../src/sources/yaml-fast';

const ROOT = path.join(__dirname, '..', '..', '..');

function yamlFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : yamlFiles(p);
    return /\.ya?ml$/.test(e.name) ? [p] : [];
  });
}

const documents = (text: string): string[] => text.split(/^(?=---)/m);

/** js-yaml's reading of `doc`, or 'error'. */
function reference(doc: string): unknown {
  try {
    return load(doc, { schema: CORE_SCHEMA }) ?? null;
  } catch {
    return 'error';
  }
}

/** Documents the fast reader took (each checked against js-yaml). */
function agreeing(t: { deepEqual(a: unknown, b: unknown, m: string): void }, docs: readonly string[]): number {
  let taken = 0;
  for (const doc of docs) {
    const fast = fastLoad(doc);
    if (!fast) continue;
    taken++;
    t.deepEqual(fast.value, reference(doc), JSON.stringify(doc).slice(0, 200));
  }
  return taken;
}

function benchDocs(): string[] {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nf-yaml-fast-')), 'state');
  try {
    writeStateDir(dir, { namespaces: 20, policiesPerNamespace: 2, podsPerNamespace: 5, nodes: 5, clusterPolicies: 3 });
    return fs.readdirSync(dir).flatMap((f) => documents(fs.readFileSync(path.join(dir, f), 'utf8')));
  } finally {
    fs.rmSync(path.dirname(dir), { recursive: true, force: true });
  }
}

test('the benchmark manifests are read whole, as js-yaml reads them', (t) => {
  const docs = benchDocs();
  t.is(agreeing(t, docs), docs.length, 'every document taken');
});

test("the repository's manifests: what is read is read as js-yaml reads it", (t) => {
  const files = ['examples', 'deploy', 'test'].flatMap((d) => yamlFiles(path.join(ROOT, d)));
  const docs = files.flatMap((f) => documents(fs.readFileSync(f, 'utf8')));
  t.true(files.length > 20);
  t.true(agreeing(t, docs) > docs.length / 2, 'most are taken');
});

test('mutated manifests: whatever is read is read as js-yaml reads it (never a js-yaml error)', (t) => {
  const docs = [
    ...benchDocs(),
    ...yamlFiles(path.join(ROOT, 'examples')).flatMap((f) => documents(fs.readFileSync(f, 'utf8'))),
  ];
  const BITS = [
    ':',
    ': ',
    ' ',
    '#',
    ' #',
    '-',
    '- ',
    '[',
    ']',
    '{',
    '}',
    ',',
    '"',
    "'",
    '\t',
    '\r',
    '\\',
    '0',
    '1.5',
    'true',
    'null',
    '~',
    '&a',
    '*a',
    '!',
    '|',
    '>',
    '?',
    '%',
    '\n',
    '\n  ',
    '\n- ',
    '  ',
    'x',
    '0x1F',
    '.inf',
    '__proto__',
    "''",
    '""',
    'é',
  ];
  let seed = 19;
  const rand = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  const mutants = Array.from({ length: 20_000 }, () => {
    let d = docs[rand(docs.length)];
    for (let m = 1 + rand(3); m > 0; m--) {
      const at = rand(d.length + 1);
      d = d.slice(0, at) + BITS[rand(BITS.length)] + d.slice(at + rand(3));
    }
    return d;
  });
  const taken = agreeing(t, mutants);
  t.true(taken > 1000, `the sweep reaches the reader (${taken})`);
});

test('scalars resolve as the core schema says; what it leaves to js-yaml, it leaves', (t) => {
  const doc =
    "a: 1.0\nb: 0x1F\nc: ~\nd: 10.0.0.1\ne: True\nf: example/app:1.0\ng: 'it''s'\nh: \"x # y\"\n" +
    'i: { j: [1, "k", -2], l: {}, m: [] }  # c\nn:\n- o\n- p: q\n  r: s\nt: null\nu: 1e3\nv: .inf\n';
  t.deepEqual(fastLoad(doc)?.value, reference(doc));
  t.deepEqual(fastLoad(doc)?.value, {
    a: 1,
    b: 31,
    c: null,
    d: '10.0.0.1',
    e: true,
    f: 'example/app:1.0',
    g: "it's",
    h: 'x # y',
    i: { j: [1, 'k', -2], l: {}, m: [] },
    n: ['o', { p: 'q', r: 's' }],
    t: null,
    u: 1000,
    v: Infinity,
  });
  for (const given of [
    'a: &x 1\nb: *x\n',
    'a: |\n  text\n',
    'a: !!str 1\n',
    'a: "\\n"\n',
    'a: 1\na: 2\n',
    'a: b\n  c\n',
    'a:\n\tb: 1\n',
    'a:\n    b: 1\n  c: 2\n',
    '1: a\n',
    'true: a\n',
    '__proto__: a\n',
    'a: [1,\n  2]\n',
    'a: b: c\n',
    'just text\n',
  ])
    t.is(fastLoad(given), undefined, JSON.stringify(given));
});
