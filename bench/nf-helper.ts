// Runs inside the node namespace (`ip netns exec NODE node dist/bench/nf-helper.js ...`)
// because the addon attaches to interfaces of the caller's namespace:
//   attach --object O --pin DIR --cidrs N --client-if IF --server-if IF --client-ip IP
//       a private netfence object whose server endpoint is isolated by a table of N
//       CIDR prefixes (the client's address the last one; N = 0: not isolated), its
//       programs attached through links pinned under DIR to the hooks the agent would
//       give each endpoint (src/datapath/hooks.ts: none for an endpoint without a table)
//   attach-empty --object EMPTY --pin DIR --ifs IF[,IF]
//       the do-nothing program of bench/empty.bpf.c on both tc hooks of each interface
// Both attach commands print {"progIds":[...]}: the programs on the hooks (run statistics).
//   detach --pin DIR --ifs IF,IF
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { native } from '../src/datapath/native';
import { TC_DIRECTIONS, hooksFor } from '../src/datapath/hooks';
import type { TcDirection } from '../src/datapath/native-api';
import { fillMaps, openBenchObject, writeConfig, writePodEndpoint } from './datapath';
import { buildPolicy } from './policy';

const TABLE = 1;
const PROG: Record<TcDirection, string> = { ingress: 'nf_tc_ingress', egress: 'nf_tc_egress' };

function ifindex(name: string): number {
  const l = native.linkByName(name);
  if (!l) throw new Error(`find interface ${name}: not in this namespace`);
  return l.ifindex;
}

function linkPin(dir: string, ifname: string, d: TcDirection): string {
  return path.join(dir, `${ifname}-${d}`);
}

function attach(o: Record<string, string | undefined>): void {
  const need = (k: string): string => {
    const v = o[k];
    if (!v) throw new Error(`nf-helper attach: --${k} is required`);
    return v;
  };
  const cidrs = Number(need('cidrs'));
  const pin = need('pin');
  const client = need('client-if');
  const server = need('server-if');
  const obj = openBenchObject(native, need('object'), { nf_peer_cidr: Math.max(16384, cidrs + 1024) });
  try {
    if (cidrs > 0) {
      const policy = buildPolicy({ table: TABLE, cidrs, families: [4], identities: 10, probes: [need('client-ip')] });
      fillMaps(native, obj, policy.entries);
    }
    writeConfig(native, obj);
    const endpoints = [
      { ifname: client, ep: writePodEndpoint(native, obj, ifindex(client), 1, 0) },
      { ifname: server, ep: writePodEndpoint(native, obj, ifindex(server), 2, cidrs > 0 ? TABLE : 0) },
    ];
    mkdirSync(pin, { recursive: true });
    const ids = new Set<number>();
    for (const { ifname, ep } of endpoints) {
      for (const d of hooksFor(ep)) {
        native.tcAttach(ifindex(ifname), d, obj.prog(PROG[d]).fd, { linkPin: linkPin(pin, ifname, d) });
        ids.add(obj.prog(PROG[d]).id);
      }
    }
    printProgIds(ids);
  } finally {
    obj.close();
  }
}

function printProgIds(ids: Iterable<number>): void {
  process.stdout.write(`${JSON.stringify({ progIds: [...ids] })}\n`);
}

function attachEmpty(o: Record<string, string | undefined>): void {
  if (!o.object || !o.pin || !o.ifs) throw new Error('nf-helper attach-empty: --object, --pin and --ifs are required');
  const obj = openBenchObject(native, o.object);
  try {
    mkdirSync(o.pin, { recursive: true });
    for (const ifname of o.ifs.split(',')) {
      for (const d of TC_DIRECTIONS) native.tcAttach(ifindex(ifname), d, obj.prog('bench_empty').fd, { linkPin: linkPin(o.pin, ifname, d) });
    }
    printProgIds([obj.prog('bench_empty').id]);
  } finally {
    obj.close();
  }
}

function detach(o: Record<string, string | undefined>): void {
  if (!o.pin || !o.ifs) throw new Error('nf-helper detach: --pin and --ifs are required');
  for (const ifname of o.ifs.split(',')) {
    for (const d of TC_DIRECTIONS) {
      const pinned = linkPin(o.pin, ifname, d);
      if (existsSync(pinned)) native.tcDetach(ifindex(ifname), d, { linkPin: pinned });
    }
  }
}

function main(): void {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: Object.fromEntries(
      ['object', 'pin', 'cidrs', 'client-if', 'server-if', 'client-ip', 'ifs'].map((k) => [k, { type: 'string' as const }]),
    ),
  });
  const cmd = positionals[0];
  if (cmd === 'attach') attach(values);
  else if (cmd === 'attach-empty') attachEmpty(values);
  else if (cmd === 'detach') detach(values);
  else throw new Error(`nf-helper: unknown command "${cmd ?? ''}" (attach, attach-empty, detach)`);
}

try {
  main();
} catch (e) {
  process.stderr.write(`${(e as Error).message}\n`);
  process.exit(1);
}
