// The e2e scenario format (test/e2e/scenarios/*.yaml): a topology (a state directory or
// inline objects) and steps that apply, delete or relabel objects, each with the expected
// truth table. Expectation keys are "FROM->TO[ PORT][ v4|v6]" with `*` globs, first match
// wins: {"x/*->y/a": deny, "*->*": allow}.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseAllDocuments, parse as parseYaml, stringify } from 'yaml';

export type Expected = 'allow' | 'deny';
export type K8sObject = {
  apiVersion?: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
} & Record<string, unknown>;

export interface ObjectRef {
  kind: string;
  namespace?: string;
  name: string;
}

export interface ExtraProbe {
  from: string;
  to: string;
  port: string;
  expect: Expected;
}

export interface Step {
  name: string;
  apply: K8sObject[];
  delete: ObjectRef[];
  relabel: { pod?: string; namespace?: string; labels: Record<string, string | null> }[];
  ports?: string[];
  network?: string;
  /** Ordered expectation table for the pod matrix (absent = no matrix in this step). */
  expect?: [string, Expected][];
  /** Individual probes (nodes, the api emulation, services, IPs). */
  probes: ExtraProbe[];
  /** Open long-lived TCP connections now: id -> {from, to, port}. */
  hold: Record<string, { from: string; to: string; port: string }>;
  /** Expected state of connections opened by earlier `hold`s. */
  held: Record<string, Expected>;
  /** Transparent-tunnel checks against the fabric's counters. */
  tunnel: { from: string; to: string; port: string; hairpin: boolean }[];
  /** UDP request bursts (DNS through a ClusterIP) that must not lose anything. */
  udpLoss: { from: string; to: string; port: string; count: number }[];
  /** Skip the `netfence trace` cross-check in this step (e.g. node-only probes). */
  noTrace: boolean;
}

export interface Scenario {
  file: string;
  name: string;
  /** The topology objects; steps edit a copy. */
  objects: K8sObject[];
  ports: string[];
  steps: Step[];
}

function fail(file: string, where: string, msg: string): never {
  throw new Error(`load scenario ${file}: ${where}: ${msg}`);
}

function yamlObjects(dir: string): K8sObject[] {
  const out: K8sObject[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...yamlObjects(p));
    else if (/\.ya?ml$/.test(name)) {
      for (const doc of parseAllDocuments(readFileSync(p, 'utf8'))) {
        const js = doc.toJS() as K8sObject | null;
        if (js) out.push(js);
      }
    }
  }
  return out;
}

const list = <T>(v: unknown): T[] => (v === undefined || v === null ? [] : Array.isArray(v) ? (v as T[]) : [v as T]);

export function loadScenario(file: string): Scenario {
  const doc = parseYaml(readFileSync(file, 'utf8')) as Record<string, unknown>;
  if (!doc || typeof doc !== 'object') fail(file, '(root)', 'expected a mapping');
  const name = String(doc.name ?? file);
  let objects: K8sObject[];
  if (typeof doc.topology === 'string') objects = yamlObjects(resolve(dirname(file), doc.topology));
  else if (Array.isArray(doc.topology)) objects = doc.topology as K8sObject[];
  else fail(file, 'topology', 'expected a state directory path or a list of objects');
  objects.push(...list<K8sObject>(doc.objects));
  const ports = list<string>(doc.ports ?? ['80/TCP']);
  const steps = list<Record<string, unknown>>(doc.steps).map((s, i): Step => {
    const where = `steps[${i}]`;
    const expect = s.expect as Record<string, unknown> | undefined;
    if (expect) {
      for (const [k, v] of Object.entries(expect)) {
        if (v !== 'allow' && v !== 'deny')
          fail(file, `${where}.expect["${k}"]`, `expected allow or deny, got ${String(v)}`);
        parsePattern(k);
      }
    }
    for (const key of Object.keys(s)) {
      if (
        ![
          'name',
          'apply',
          'delete',
          'relabel',
          'ports',
          'network',
          'expect',
          'probes',
          'hold',
          'held',
          'tunnel',
          'udpLoss',
          'noTrace',
        ].includes(key)
      ) {
        fail(file, `${where}.${key}`, 'unknown field');
      }
    }
    return {
      name: String(s.name ?? `step ${i}`),
      apply: list(s.apply),
      delete: list(s.delete),
      relabel: list(s.relabel),
      ...(s.ports ? { ports: list<string>(s.ports) } : {}),
      ...(typeof s.network === 'string' ? { network: s.network } : {}),
      ...(expect ? { expect: Object.entries(expect) as [string, Expected][] } : {}),
      probes: list(s.probes),
      hold: (s.hold ?? {}) as Step['hold'],
      held: (s.held ?? {}) as Step['held'],
      tunnel: list(s.tunnel),
      udpLoss: list(s.udpLoss),
      noTrace: s.noTrace === true,
    };
  });
  return { file, name, objects, ports, steps };
}

interface Pattern {
  from: RegExp;
  to: RegExp;
  port?: string;
  family?: 4 | 6;
}

function glob(text: string): RegExp {
  return new RegExp(
    `^${text
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('[^/]*')}$`,
  );
}

export function parsePattern(key: string): Pattern {
  const m = /^\s*(\S+)\s*->\s*(\S+)(?:\s+(\d+\/[A-Za-z]+))?(?:\s+v([46]))?\s*$/.exec(key);
  if (!m) throw new Error(`parse expectation "${key}": expected "FROM->TO[ PORT][ v4|v6]"`);
  // "*" alone matches any endpoint; "x/*" any pod of x.
  const side = (s: string): RegExp => (s === '*' ? /^.*$/ : glob(s));
  return {
    from: side(m[1]),
    to: side(m[2]),
    ...(m[3] ? { port: m[3].toUpperCase() } : {}),
    ...(m[4] ? { family: Number(m[4]) as 4 | 6 } : {}),
  };
}

/** The expected verdict of a pair: the first matching key. */
export function expected(
  table: [string, Expected][],
  pair: { from: string; to: string; port: string; family?: 4 | 6 },
): Expected {
  for (const [key, verdict] of table) {
    const p = parsePattern(key);
    if (!p.from.test(pair.from) || !p.to.test(pair.to)) continue;
    if (p.port && p.port !== pair.port.toUpperCase()) continue;
    if (p.family && pair.family && p.family !== pair.family) continue;
    return verdict;
  }
  throw new Error(`expectation: no key matches ${pair.from}->${pair.to} ${pair.port}`);
}

const refKey = (r: ObjectRef): string => `${r.kind}/${r.namespace ?? ''}/${r.name}`;
const objKey = (o: K8sObject): string =>
  refKey({ kind: o.kind, namespace: o.metadata.namespace, name: o.metadata.name });

/** The scenario's current objects; `render` gives the single-file state the agents read. */
export class WorkingState {
  private objects = new Map<string, K8sObject>();

  constructor(initial: K8sObject[]) {
    for (const o of initial) this.objects.set(objKey(o), structuredClone(o));
  }

  applyStep(step: Step): void {
    for (const o of step.apply) this.objects.set(objKey(o), structuredClone(o));
    for (const r of step.delete) {
      if (!this.objects.delete(refKey(r))) throw new Error(`delete ${refKey(r)}: not in the state`);
    }
    for (const r of step.relabel) {
      const ref: ObjectRef = r.pod
        ? { kind: 'Pod', namespace: r.pod.split('/')[0], name: r.pod.split('/')[1] }
        : { kind: 'Namespace', name: r.namespace ?? '' };
      const obj = this.objects.get(refKey(ref));
      if (!obj) throw new Error(`relabel ${refKey(ref)}: not in the state`);
      const labels = { ...(obj.metadata.labels ?? {}) };
      for (const [k, v] of Object.entries(r.labels)) {
        if (v === null) delete labels[k];
        else labels[k] = v;
      }
      obj.metadata = { ...obj.metadata, labels };
    }
  }

  render(): string {
    return [...this.objects.values()].map((o) => stringify(o)).join('---\n');
  }
}
