// A seeded generator of small random clusters as raw Kubernetes objects (what a YAML file
// holds): Namespaces with labels, Nodes, Pods with labels, one or two addresses (IPv4 in
// 10.244.0.0/16, IPv6 in fd00::/8) and named container ports (a name means different numbers
// and protocols on different pods), and NetworkPolicies using every v1 feature: all selector
// operators, the three peer shapes and ipBlock with except over pod addresses, ports by
// number, range (endPort) and name, TCP/UDP/SCTP and the protocol default, policyTypes given
// or defaulted, empty vs missing sections, policies in namespaces without pods.
// Shares no code with src/: test/unit/spec-oracle.test.ts feeds it to both the project's
// loader and the independent oracle (spec-oracle.ts).

import { Rng } from './rng';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Raw = any;

export const NS_NAMES = ['alpha', 'beta', 'gamma', 'delta'];
const NS_LABELS: Record<string, string[]> = { team: ['red', 'blue'], env: ['prod', 'dev', 'test', '2', 'on'] };
// '' is a valid label value; a prefixed key; a key that is also an Object.prototype member.
const POD_LABELS: Record<string, string[]> = {
  app: ['web', 'db', 'api'],
  role: ['fe', 'be', ''],
  // values a YAML writer must quote to keep them strings
  'app.kubernetes.io/version': ['v1', '1', '1.0', 'true', 'yes', 'null', '0x1F', '08', '1e3'],
  constructor: ['x'],
};
export const PORT_NAMES = ['http', 'metrics', 'dns', 'grpc', 'admin'];
const PORT_NUMBERS = [53, 80, 81, 443, 1000, 5000, 8080, 9090];
const PROTOCOLS = ['TCP', 'UDP', 'SCTP'] as const;

// ---- addresses (generator side: formatting only) ----

export function formatV4(v: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join('.');
}

/** RFC 5952 text: lower case, longest run (>= 2) of zero groups compressed. */
export function formatV6(v: bigint, expanded = false): string {
  const g = Array.from({ length: 8 }, (_, i) => Number((v >> BigInt(112 - 16 * i)) & 0xffffn));
  if (expanded) return g.map((x) => x.toString(16).padStart(4, '0')).join(':');
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

function mask(v: bigint, len: number, bits: number): bigint {
  const shift = BigInt(bits - len);
  return (v >> shift) << shift;
}

interface GenAddr {
  family: 4 | 6;
  value: bigint;
}

function randomV4(r: Rng): bigint {
  return (10n << 24n) | (244n << 16n) | (BigInt(r.int(0, 3)) << 8n) | BigInt(r.int(1, 254));
}

function randomV6(r: Rng): bigint {
  // fd0X:0:0:S::H
  return (
    ((0xfd00n | BigInt(r.int(0, 3))) << 112n) |
    (BigInt(r.int(0, 3)) << 64n) |
    BigInt(r.pick([1, 2, 3, r.int(1, 0xffff)]))
  );
}

// ---- selectors ----

function labelsFrom(r: Rng, pool: Record<string, string[]>, p: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, vs] of Object.entries(pool)) if (r.chance(p)) out[k] = r.pick(vs);
  return out;
}

function selector(r: Rng, pool: Record<string, string[]>): Raw {
  const keys = Object.keys(pool);
  const value = (k: string) => (r.chance(0.9) ? r.pick(pool[k]) : 'none');
  const shape = r.int(0, 9);
  if (shape <= 1) return r.pick([{}, {}, {}, { matchLabels: {} }, { matchExpressions: [] }]);
  const sel: Raw = {};
  if (shape <= 5 || shape === 9) {
    sel.matchLabels = {};
    for (const k of r.shuffle(keys).slice(0, r.int(1, 2))) sel.matchLabels[k] = value(k);
  }
  if (shape >= 6) {
    sel.matchExpressions = r
      .shuffle(keys)
      .slice(0, r.int(1, 2))
      .map((key) => {
        const operator = r.pick(['In', 'NotIn', 'Exists', 'DoesNotExist']);
        if (operator === 'Exists' || operator === 'DoesNotExist') return { key, operator };
        const values = [...new Set(Array.from({ length: r.int(1, 2) }, () => value(key)))];
        return { key, operator, values };
      });
  }
  return sel;
}

// ---- pods ----

export interface GenOptions {
  /** Now and then write CIDRs with host bits set below the prefix (valid upstream). */
  nonCanonicalCidrs?: boolean;
  /** Now and then write IPv6 addresses fully expanded or in upper case (valid, not RFC 5952). */
  expandedV6?: boolean;
  /** Now and then write optional fields as explicit YAML nulls (the API treats null as unset). */
  nulls?: boolean;
}

function containers(r: Rng): Raw[] {
  const names = r.shuffle(PORT_NAMES).slice(0, r.int(0, 4));
  const ports: Raw[] = names.map((name) => {
    const p: Raw = { name, containerPort: r.pick(PORT_NUMBERS) };
    const proto = r.int(0, 4);
    if (proto > 0) p.protocol = PROTOCOLS[(proto - 1) % 3];
    return p;
  });
  if (r.chance(0.3)) ports.push({ containerPort: r.pick(PORT_NUMBERS), protocol: r.pick(PROTOCOLS) });
  const n = Math.max(1, Math.min(ports.length, r.int(1, 3)));
  return Array.from({ length: n }, (_, i) => {
    const mine = ports.filter((_p, j) => j % n === i);
    const c: Raw = { name: `c${i}`, image: 'registry.k8s.io/pause:3.10' };
    if (mine.length) c.ports = mine;
    return c;
  });
}

function v6Text(r: Rng, v: bigint, opts: GenOptions): string {
  if (!opts.expandedV6 || r.chance(0.7)) return formatV6(v);
  const t = formatV6(v, r.chance(0.5));
  return r.chance(0.5) ? t.toUpperCase() : t;
}

interface GenPod {
  obj: Raw;
  addrs: GenAddr[];
}

function pods(r: Rng, namespaces: string[], opts: GenOptions): GenPod[] {
  const used = new Set<string>();
  const fresh = (f: () => bigint) => {
    for (;;) {
      const v = f();
      if (!used.has(v.toString())) {
        used.add(v.toString());
        return v;
      }
    }
  };
  const out: GenPod[] = [];
  const total = r.int(2, 10);
  const perNs = new Map<string, number>();
  for (let i = 0; i < total; i++) {
    const ns = r.pick(namespaces);
    const index = perNs.get(ns) ?? 0; // pod names repeat across namespaces
    perNs.set(ns, index + 1);
    const mode = r.int(0, 9); // 0-3 v4, 4-5 v6, 6-9 dual
    const addrs: GenAddr[] = [];
    if (mode <= 3 || mode >= 6) addrs.push({ family: 4, value: fresh(() => randomV4(r)) });
    if (mode >= 4) addrs.push({ family: 6, value: fresh(() => randomV6(r)) });
    if (addrs.length === 2 && r.chance(0.3)) addrs.reverse(); // IPv6-primary dual stack
    const text = (a: GenAddr) => (a.family === 4 ? formatV4(a.value) : v6Text(r, a.value, opts));
    const status: Raw = { phase: 'Running' };
    const form = r.int(0, 2);
    if (addrs.length === 1 && form === 0) status.podIP = text(addrs[0]);
    else {
      status.podIPs = addrs.map((a) => ({ ip: text(a) }));
      if (form === 1) status.podIP = text(addrs[0]);
    }
    out.push({
      addrs,
      obj: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: `pod-${index}`, namespace: ns, labels: labelsFrom(r, POD_LABELS, 0.5) },
        spec: { nodeName: r.pick(['node-1', 'node-2']), containers: containers(r) },
        status,
      },
    });
  }
  return out;
}

// ---- policies ----

function ipBlock(r: Rng, all: GenAddr[], opts: GenOptions): Raw {
  const base: GenAddr =
    all.length && r.chance(0.8)
      ? r.pick(all)
      : r.chance(0.5)
        ? { family: 4, value: randomV4(r) }
        : { family: 6, value: randomV6(r) };
  const bits = base.family === 4 ? 32 : 128;
  const len =
    base.family === 4
      ? r.pick([0, 8, 16, 22, 23, 24, 25, 26, 28, 30, 31, 32])
      : r.pick([0, 8, 14, 16, 48, 62, 64, 112, 120, 126, 127, 128]);
  const fmt = (v: bigint, l: number) => `${base.family === 4 ? formatV4(v) : v6Text(r, v, opts)}/${l}`;
  const cidrText = (v: bigint, l: number) => fmt(opts.nonCanonicalCidrs && r.chance(0.1) ? v : mask(v, l, bits), l);
  const block: Raw = { cidr: cidrText(base.value, len) };
  if (len < bits && r.chance(0.5)) {
    const inside = all.filter(
      (a) => a.family === base.family && mask(a.value, len, bits) === mask(base.value, len, bits),
    );
    block.except = Array.from({ length: r.int(1, 2) }, () => {
      const a = r.pick(inside.length ? inside : [base]);
      const l = r.int(len + 1, bits);
      return cidrText(a.value, l);
    });
  }
  return { ipBlock: block };
}

function peer(r: Rng, all: GenAddr[], opts: GenOptions): Raw {
  const nsPool = { ...NS_LABELS, 'kubernetes.io/metadata.name': NS_NAMES };
  switch (r.int(0, 3)) {
    case 0:
      return { podSelector: selector(r, POD_LABELS) };
    case 1:
      return { namespaceSelector: selector(r, nsPool) };
    case 2:
      return { namespaceSelector: selector(r, nsPool), podSelector: selector(r, POD_LABELS) };
    default:
      return ipBlock(r, all, opts);
  }
}

function port(r: Rng): Raw {
  const p: Raw = {};
  if (r.chance(0.7)) p.protocol = r.pick(PROTOCOLS);
  const kind = r.int(0, 9);
  if (kind <= 1) return p; // protocol only: every port
  if (kind <= 5) {
    p.port = r.chance(0.85) ? r.pick(PORT_NUMBERS) : r.int(1, 65535);
    if (kind >= 4) p.endPort = Math.min(65535, p.port + r.pick([0, 1, 2, 30, 1000, 65535]));
  } else {
    p.port = r.chance(0.9) ? r.pick(PORT_NAMES) : 'nope';
  }
  return p;
}

function rule(r: Rng, peersKey: 'from' | 'to', all: GenAddr[], opts: GenOptions): Raw {
  const out: Raw = {};
  const peers = r.int(0, 9);
  if (peers === 1) out[peersKey] = [];
  else if (peers >= 2) out[peersKey] = Array.from({ length: r.int(1, 3) }, () => peer(r, all, opts));
  const ports = r.int(0, 9);
  if (ports === 1) out.ports = [];
  else if (ports >= 4) out.ports = Array.from({ length: r.int(1, 3) }, () => port(r));
  return out;
}

function section(r: Rng, peersKey: 'from' | 'to', all: GenAddr[], opts: GenOptions): Raw[] | undefined {
  const k = r.int(0, 9);
  if (k <= 2) return undefined;
  if (k === 3) return [];
  if (k === 4) return [{}]; // allow all
  return Array.from({ length: r.int(1, 3) }, () => rule(r, peersKey, all, opts));
}

const POLICY_TYPES: (string[] | undefined)[] = [
  undefined,
  undefined,
  undefined,
  [],
  ['Ingress'],
  ['Egress'],
  ['Egress'],
  ['Ingress', 'Egress'],
  ['Egress', 'Ingress'],
];

/** Unset optional fields written as null now and then, and `podSelector: null` for {}. */
function addNulls(r: Rng, spec: Raw): void {
  const maybe = (o: Raw, keys: string[]) => {
    for (const k of keys) if (o[k] === undefined && r.chance(0.3)) o[k] = null;
  };
  if (Object.keys(spec.podSelector).length === 0 && r.chance(0.5)) spec.podSelector = null;
  maybe(spec, ['policyTypes', 'ingress', 'egress']);
  for (const rule of [...(spec.ingress ?? []), ...(spec.egress ?? [])]) {
    maybe(rule, ['ports', spec.ingress?.includes(rule) ? 'from' : 'to']);
    for (const p of rule.ports ?? []) maybe(p, ['protocol', 'port', 'endPort']);
    for (const peer of [...(rule.from ?? []), ...(rule.to ?? [])]) {
      if (peer.ipBlock) maybe(peer.ipBlock, ['except']);
      else maybe(peer, ['podSelector', 'namespaceSelector']);
    }
  }
}

function policy(r: Rng, name: string, namespace: string, all: GenAddr[], opts: GenOptions): Raw {
  const spec: Raw = { podSelector: r.chance(0.3) ? {} : selector(r, POD_LABELS) };
  const shape = r.int(0, 9);
  if (shape === 0) {
    // default deny: ingress, egress or both
    spec.policyTypes = r.pick([['Ingress'], ['Egress'], ['Ingress', 'Egress']]);
    if (r.chance(0.5)) spec.ingress = [];
    if (r.chance(0.5)) spec.egress = [];
  } else {
    const types = r.pick(POLICY_TYPES);
    if (types) spec.policyTypes = types;
    const ingress = section(r, 'from', all, opts);
    if (ingress) spec.ingress = ingress;
    const egress = section(r, 'to', all, opts);
    if (egress) spec.egress = egress;
  }
  if (opts.nulls) addNulls(r, spec);
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, namespace },
    spec,
  };
}

export interface GenCluster {
  objects: Raw[];
}

export function generateCluster(seed: number, opts: GenOptions = {}): GenCluster {
  const r = new Rng(seed);
  const namespaces = NS_NAMES.slice(0, r.int(2, 4));
  const objects: Raw[] = [
    {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'node-1' },
      status: { addresses: [{ type: 'InternalIP', address: '192.168.0.1' }] },
    },
    {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'node-2' },
      status: {
        addresses: [
          { type: 'InternalIP', address: '192.168.0.2' },
          { type: 'InternalIP', address: '2001:db8::2' },
        ],
      },
    },
  ];
  for (const name of namespaces) {
    objects.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: labelsFrom(r, NS_LABELS, 0.7) } });
  }
  const ps = pods(r, namespaces, opts);
  objects.push(...ps.map((p) => p.obj));
  const all = ps.flatMap((p) => p.addrs);
  const n = r.int(1, r.chance(0.8) ? 4 : 8);
  const perNs = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const namespace = r.pick(namespaces);
    const index = perNs.get(namespace) ?? 0; // policy names repeat across namespaces
    perNs.set(namespace, index + 1);
    objects.push(policy(r, `np-${index}`, namespace, all, opts));
  }
  return { objects };
}
