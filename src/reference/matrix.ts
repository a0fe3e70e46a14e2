// The truth table of every ordered pair of distinct pods for one port and protocol:
// what `netfence trace --matrix --engine model` prints and the truth-table tests check.
import type { Family } from '../model/ip';
import { ipFamily } from '../model/ip';
import type { L4Protocol } from '../model/rules';
import type { PodObj, Snapshot } from '../model/types';
import { evaluate, type Verdict } from './evaluate';

export interface MatrixPair {
  from: string; // "ns/pod"
  to: string;
  verdict: 'allow' | 'deny';
  detail: Verdict;
}

export interface MatrixOptions {
  protocol: L4Protocol;
  port: number;
  family?: Family; // default 4
  network?: string;
}

function podAddress(pod: PodObj, family: Family, network?: string): string | undefined {
  const ips = network === undefined ? pod.ips : pod.networks.filter((n) => n.network === network).flatMap((n) => n.ips);
  return ips.find((ip) => ipFamily(ip) === family);
}

export function podMatrix(s: Snapshot, opts: MatrixOptions): MatrixPair[] {
  const family = opts.family ?? 4;
  const pods = [...s.pods]
    .map((p) => ({ name: `${p.namespace}/${p.name}`, ip: podAddress(p, family, opts.network) }))
    .filter((p): p is { name: string; ip: string } => p.ip !== undefined)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return pods.flatMap((from) =>
    pods
      .filter((to) => to !== from)
      .map((to) => {
        const detail = evaluate(s, {
          src: from.ip,
          dst: to.ip,
          protocol: opts.protocol,
          dstPort: opts.port,
          network: opts.network,
        });
        return { from: from.name, to: to.name, verdict: detail.verdict, detail };
      }),
  );
}
