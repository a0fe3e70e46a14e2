// Local delivery's cost (issue 19): pod-to-pod connection rate and node CPU per connection
// with localDelivery on and off, on a node without policies and with an isolating one that
// allows the client. Each case is the netfence object as the agent programs it (the entries
// and the hooks src/compile/hooks.ts gives each endpoint, bench/nf-helper.ts) measured in
// tight pairs against bare (bench/net.ts), so load from outside the benchmark divides out.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { NetBench, type NetVariant } from './net';
import { median } from './stats';
import { Topology } from './topology';
import type { LocalDeliveryCase, LocalDeliveryCaseName, LocalDeliveryResults } from './types';
import { LOCAL_DELIVERY_CASES } from './localdelivery-report';

/** Prefixes in the isolating policy's table (the client's address among them): the
 *  lookup's cost does not grow with the count (bench part pkt). */
const POLICY_CIDRS = 100;
/** /proc/stat counts in USER_HZ, 100 on every Linux architecture that matters here. */
const USER_HZ = 100;

export interface LocalDeliveryOptions {
  object: string;
  pairs: number;
  pairSeconds: number;
  defaultOn: boolean;
  log: (msg: string) => void;
}

/** Busy and total time of all CPUs since boot (s), from /proc/stat's first line. */
export function cpuTimes(stat = readFileSync('/proc/stat', 'utf8')): { busy: number; total: number } {
  const line = stat.split('\n')[0];
  if (!line.startsWith('cpu ')) throw new Error(`read /proc/stat: first line is not "cpu ...": "${line}"`);
  // user nice system idle iowait irq softirq steal (guest time is inside user)
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  const busy = user + nice + system + irq + softirq;
  return { busy: busy / USER_HZ, total: (busy + idle + iowait + (steal || 0)) / USER_HZ };
}

function variant(name: LocalDeliveryCaseName): NetVariant {
  return {
    name,
    engine: 'netfence',
    rules: name.startsWith('policy') ? POLICY_CIDRS : 0,
    localDelivery: name.endsWith('_on'),
  };
}

export async function runLocalDelivery(opts: LocalDeliveryOptions): Promise<LocalDeliveryResults> {
  const bench = new NetBench(new Topology(`ld${process.pid}`), {
    object: opts.object,
    rounds: 1,
    crrSeconds: opts.pairSeconds,
    iperfSeconds: 1,
    pairs: opts.pairs,
    pairSeconds: opts.pairSeconds,
    ruleCounts: [],
    skipEngines: {},
    log: opts.log,
  });
  // One run: its connection rate and the node's CPU time per connection (all CPUs busy
  // over the run, divided by the connections it would make in that time at its rate).
  const measure = async (): Promise<{ rate: number; cpuUs: number }> => {
    const before = cpuTimes();
    const { rate } = await bench.crr(opts.pairSeconds);
    const after = cpuTimes();
    const busyCpus = ((after.busy - before.busy) / (after.total - before.total)) * os.cpus().length;
    return { rate, cpuUs: (busyCpus / rate) * 1e6 };
  };
  const cases = {} as Record<LocalDeliveryCaseName, LocalDeliveryCase>;
  try {
    await bench.start();
    for (const name of LOCAL_DELIVERY_CASES) {
      const v = variant(name);
      await bench.checkNoRules(v);
      const runs = await bench.pairedRuns(v, measure);
      cases[name] = {
        pairs: runs.map((p) => ({ bare: p.bare.rate, variant: p.variant.rate })),
        ratio: median(runs.map((p) => p.variant.rate / p.bare.rate)),
        cpuUsPerConn: {
          bare: median(runs.map((p) => p.bare.cpuUs)),
          variant: median(runs.map((p) => p.variant.cpuUs)),
        },
        cpuRatio: median(runs.map((p) => p.variant.cpuUs / p.bare.cpuUs)),
      };
      opts.log(
        `localdelivery: ${opts.pairs} pairs bare / ${name}: conn/s x${cases[name].ratio.toFixed(3)}, ` +
          `CPU/conn x${cases[name].cpuRatio.toFixed(3)}`,
      );
    }
  } finally {
    await bench.stop();
  }
  return {
    pairs: opts.pairs,
    pairSeconds: opts.pairSeconds,
    policyCidrs: POLICY_CIDRS,
    defaultOn: opts.defaultOn,
    cases,
  };
}
