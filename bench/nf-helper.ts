// Runs inside the node namespace (`nsenter --net=... node dist/bench/nf-helper.js ...`)
// because the addon attaches to interfaces of the caller's namespace:
//   attach --object O --pin DIR --cidrs N --client-if IF --server-if IF --client-ip IP --server-ip IP
//          [--local-delivery on|off]
//       a private netfence object whose server endpoint is isolated by a table of N
//       CIDR prefixes (the client's address the last one; N = 0: not isolated), both
//       pods delivered locally (on, the default) or through the node's stack, its
//       programs attached through links pinned under DIR to the hooks the agent would
//       give each endpoint (src/compile/hooks.ts: both with local delivery or a table,
//       none for a pod with neither)
//   attach-empty --object EMPTY --pin DIR --ifs IF[,IF]
//       the do-nothing program of bench/empty.bpf.c on both tc hooks of each interface
// Both attach commands print {"progIds":[...]}: the programs on the hooks (run statistics).
//   detach --pin DIR --ifs IF,IF
//   serve (the options of attach, or --empty and those of attach-empty)
//       sets up the same object once and keeps it open, then answers one stdout line
//       per stdin line: "on" attaches ({"progIds":[...]}), "off" detaches ("off"), so a
//       measurement can switch between bare and the programs in milliseconds.
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { native } from '../src/datapath/native';
import { TC_HOOKS, hooksFor } from '../src/compile/hooks';
import type { LinkInfo, ProgInfo, TcDirection } from '../src/datapath/native-api';
import { fillMaps, openBenchObject, writeConfig, writePodEndpoint, type VethPod } from './datapath';
import { buildPolicy } from './policy';

const TABLE = 1;
const PROG: Record<TcDirection, string> = { ingress: 'nf_tc_ingress', egress: 'nf_tc_egress' };

type Options = Record<string, string | boolean | undefined>;

/** An object set up for a variant: the programs it puts on which hooks. */
interface Setup {
  hooks: { ifname: string; dir: TcDirection; prog: ProgInfo }[];
  close(): void;
}

function link(name: string): LinkInfo {
  const l = native.linkByName(name);
  if (!l) throw new Error(`find interface ${name}: not in this namespace`);
  return l;
}

function ifindex(name: string): number {
  return link(name).ifindex;
}

/** What the agent's discovery finds of a pod's host veth `name`: its ifindex and MACs. */
function vethPod(name: string, ip: string): { ifindex: number; veth: VethPod } {
  const l = link(name);
  const podMac = native.linkPeerMac(l);
  if (!podMac) throw new Error(`find the peer of ${name}: not a veth with a peer`);
  return { ifindex: l.ifindex, veth: { ip, podMac, hostMac: l.mac } };
}

function linkPin(dir: string, ifname: string, d: TcDirection): string {
  return path.join(dir, `${ifname}-${d}`);
}

function need(o: Options, cmd: string, k: string): string {
  const v = o[k];
  if (typeof v !== 'string' || !v) throw new Error(`nf-helper ${cmd}: --${k} is required`);
  return v;
}

function netfenceSetup(o: Options, cmd: string): Setup {
  const cidrs = Number(need(o, cmd, 'cidrs'));
  const client = need(o, cmd, 'client-if');
  const server = need(o, cmd, 'server-if');
  const clientIp = need(o, cmd, 'client-ip');
  const local = o['local-delivery'] ?? 'on';
  if (local !== 'on' && local !== 'off')
    throw new Error(`nf-helper ${cmd}: --local-delivery must be on or off, got "${String(local)}"`);
  const obj = openBenchObject(native, need(o, cmd, 'object'), { nf_peer_cidr: Math.max(16384, cidrs + 1024) });
  try {
    if (cidrs > 0) {
      const policy = buildPolicy({ table: TABLE, cidrs, families: [4], identities: 10, probes: [clientIp] });
      fillMaps(native, obj, policy.entries);
    }
    writeConfig(native, obj);
    const c = vethPod(client, clientIp);
    const s = vethPod(server, need(o, cmd, 'server-ip'));
    const endpoints = [
      { ifname: client, ep: writePodEndpoint(native, obj, c.ifindex, 1, 0, local === 'on' ? c.veth : undefined) },
      {
        ifname: server,
        ep: writePodEndpoint(native, obj, s.ifindex, 2, cidrs > 0 ? TABLE : 0, local === 'on' ? s.veth : undefined),
      },
    ];
    const hooks = endpoints.flatMap(({ ifname, ep }) =>
      hooksFor(ep).map((dir) => ({ ifname, dir, prog: obj.prog(PROG[dir]) })),
    );
    return { hooks, close: () => obj.close() };
  } catch (e) {
    obj.close();
    throw e;
  }
}

function emptySetup(o: Options, cmd: string): Setup {
  const ifs = need(o, cmd, 'ifs');
  const obj = openBenchObject(native, need(o, cmd, 'object'));
  const prog = obj.prog('bench_empty');
  return {
    hooks: ifs.split(',').flatMap((ifname) => TC_HOOKS.map((dir) => ({ ifname, dir, prog }))),
    close: () => obj.close(),
  };
}

/** Attaches the setup's programs through links pinned under `pin`; prints their ids. */
function attachHooks(s: Setup, pin: string): void {
  mkdirSync(pin, { recursive: true });
  const ids = new Set<number>();
  for (const h of s.hooks) {
    native.tcAttach(ifindex(h.ifname), h.dir, h.prog.fd, { linkPin: linkPin(pin, h.ifname, h.dir) });
    ids.add(h.prog.id);
  }
  process.stdout.write(`${JSON.stringify({ progIds: [...ids] })}\n`);
}

function detach(pin: string, ifs: string[]): void {
  for (const ifname of ifs) {
    for (const d of TC_HOOKS) {
      const pinned = linkPin(pin, ifname, d);
      if (existsSync(pinned)) native.tcDetach(ifindex(ifname), d, { linkPin: pinned });
    }
  }
}

function once(s: Setup, pin: string): void {
  try {
    attachHooks(s, pin);
  } finally {
    s.close();
  }
}

async function serve(s: Setup, pin: string): Promise<void> {
  const ifs = [...new Set(s.hooks.map((h) => h.ifname))];
  try {
    for await (const line of createInterface({ input: process.stdin })) {
      if (line === 'on') attachHooks(s, pin);
      else if (line === 'off') {
        detach(pin, ifs);
        process.stdout.write('off\n');
      } else throw new Error(`nf-helper serve: unknown command "${line}" (on, off)`);
    }
  } finally {
    detach(pin, ifs);
    s.close();
  }
}

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      ...Object.fromEntries(
        ['object', 'pin', 'cidrs', 'client-if', 'server-if', 'client-ip', 'server-ip', 'local-delivery', 'ifs'].map(
          (k) => [k, { type: 'string' as const }],
        ),
      ),
      empty: { type: 'boolean' as const },
    },
  });
  const cmd = positionals[0] ?? '';
  if (cmd === 'attach') once(netfenceSetup(values, cmd), need(values, cmd, 'pin'));
  else if (cmd === 'attach-empty') once(emptySetup(values, cmd), need(values, cmd, 'pin'));
  else if (cmd === 'detach') detach(need(values, cmd, 'pin'), need(values, cmd, 'ifs').split(','));
  else if (cmd === 'serve')
    await serve(values.empty ? emptySetup(values, cmd) : netfenceSetup(values, cmd), need(values, cmd, 'pin'));
  else throw new Error(`nf-helper: unknown command "${cmd}" (attach, attach-empty, detach, serve)`);
}

main().catch((e: Error) => {
  process.stderr.write(`${e.message}\n`);
  process.exit(1);
});
