// Local delivery's cost (issue 19): pod-to-pod connection rate and node CPU per connection
// with localDelivery on and off, on a node without policies and with an isolating one that
// allows the client. Each case is the netfence object as the agent programs it (the entries
// and the hooks src/compile/hooks.ts gives each endpoint, bench/nf-helper.ts) measured in
// tight pairs against bare (bench/net.ts), so load from outside the benchmark divides out.
import { readFileSync } from 'node:fs';
import { run } from '../src/lab/exec';
import { NetBench, type NetVariant } from './net';
import { median } from './stats';
import { Topology } from './topology';
import type { LocalDeliveryCase, LocalDeliveryCaseName, LocalDeliveryResults } from './types';
import { LOCAL_DELIVERY_CASES } from './localdelivery-report';

/** Prefixes in the isolating policy's table (the client's address among them): the
 *  lookup's cost does not grow with the count (bench part pkt). */
const POLICY_CIDRS = 100;
/** /proc/PID/stat counts in USER_HZ, 100 on every Linux architecture that matters here. */
const USER_HZ = 100;

export interface LocalDeliveryOptions {
  object: string;
  pairs: number;
  pairSeconds: number;
  defaultOn: boolean;
  log: (msg: string) => void;
}

/** User + system seconds of a process (all its threads) from its /proc/PID/stat line. */
export function procCpuSeconds(stat: string): number {
  // The command name (field 2) is in parentheses and may hold spaces: count after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const [utime, stime] = [Number(fields[11]), Number(fields[12])];
  if (!Number.isInteger(utime) || !Number.isInteger(stime))
    throw new Error(`parse /proc/PID/stat: no utime and stime in "${stat.slice(0, 80)}"`);
  return (utime + stime) / USER_HZ;
}

/** CPU seconds of every process in network namespace `ns` (the server pod's). */
async function podCpuSeconds(ns: string): Promise<number> {
  const { stdout } = await run(['ip', 'netns', 'pids', ns]);
  const pids = stdout.split(/\s+/).filter(Boolean);
  return pids.reduce((sum, pid) => sum + procCpuSeconds(readFileSync(`/proc/${pid}/stat`, 'utf8')), 0);
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
  const topo = new Topology(`ld${process.pid}`);
  const bench = new NetBench(topo, {
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
  // One run: its connection rate and the CPU time of both pods per connection. The path's
  // packet work runs in softirq context on the sending process (veth transmit) and is
  // charged to it, so this is the path's cost without the load of the shared machine's other
  // processes. The client counts its own in the measured seconds; the server's is taken
  // around the whole run, so it is divided by the connections of that wall time.
  const measure = async (): Promise<{ rate: number; cpuUs: number }> => {
    const server0 = await podCpuSeconds(topo.server);
    const t0 = process.hrtime.bigint();
    const client = await bench.crr(opts.pairSeconds);
    const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
    const server = (await podCpuSeconds(topo.server)) - server0;
    return { rate: client.rate, cpuUs: (client.cpuSeconds / client.conns + server / (client.rate * wallS)) * 1e6 };
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
