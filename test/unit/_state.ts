// Small snapshots for the model/selectors/reference tests, written as YAML like a state dir.
import { snapshotFromYaml } from '../../src/sources/directory';
import type { Snapshot } from '../../src/model/types';
import type { L4Protocol } from '../../src/model/rules';
import { evaluate, type Verdict } from '../../src/reference/evaluate';
import { resolveAddress } from '../../src/reference/address';

export function pod(ns: string, name: string, ip: string, labels: Record<string, string> = {}, extra = ''): string {
  const l = Object.entries({ app: name, ...labels })
    .map(([k, v]) => `${k}: "${v}"`)
    .join(', ');
  return `apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: ${ns}, labels: { ${l} } }
spec:
  nodeName: node-1
  containers:
    - name: c
      ports:
        - { name: http, containerPort: 8080 }
        - { name: dns, containerPort: 53, protocol: UDP }
        - { name: dns-tcp, containerPort: 5353 }
${extra}status:
  podIPs: [{ ip: ${ip} }]
`;
}

/** Two namespaces (a, b; labelled team=<name>), two pods each, one node. */
export const BASE = [
  `apiVersion: v1
kind: Node
metadata: { name: node-1, labels: { role: worker } }
status: { addresses: [{ type: InternalIP, address: 10.0.0.1 }, { type: InternalIP, address: "fd00::1" }] }`,
  `apiVersion: v1
kind: Node
metadata: { name: node-2, labels: { role: edge } }
status: { addresses: [{ type: InternalIP, address: 10.0.0.2 }] }`,
  `apiVersion: v1
kind: Namespace
metadata: { name: a, labels: { team: a } }`,
  `apiVersion: v1
kind: Namespace
metadata: { name: b, labels: { team: b } }`,
  pod('a', 'p1', '10.1.0.1', { role: 'web' }),
  pod('a', 'p2', '10.1.0.2', { role: 'db' }),
  pod('b', 'p1', '10.2.0.1', { role: 'web' }),
  pod('b', 'p2', '10.2.0.2', { role: 'db' }),
].join('\n---\n');

export function state(...docs: string[]): Snapshot {
  const s = snapshotFromYaml([BASE, ...docs].join('\n---\n'), 'test.yaml');
  if (s.errors.length) throw new Error(`test state invalid: ${JSON.stringify(s.errors)}`);
  return s;
}

/** Verdict between two names ("ns/pod", "node/N" or IPs). */
export function check(
  s: Snapshot,
  from: string,
  to: string,
  port = 8080,
  protocol: L4Protocol = 'TCP',
  network?: string,
): Verdict {
  return evaluate(s, {
    src: resolveAddress(s, from, undefined, network),
    dst: resolveAddress(s, to, undefined, network),
    protocol,
    dstPort: port,
    network,
  });
}
