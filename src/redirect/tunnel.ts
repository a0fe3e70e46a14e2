// Transparent tunnel: routes and sysctls that must exist before the datapath may mark
// (fwmark mode) or redirect (direct mode) pod-to-pod traffic toward the gateway, per
// address family: a family is tunnelled only while its gateway answers its probes
// (gateway-monitor); a silent one is switched off alone (NF_CFG_F_TUNNEL_OFF4/6).
//  fwmark: one ip rule per family `fwmark mark/mask lookup table` and that table's
//          default route via the gateway out the uplink, both tagged with NF_RT_PROTO.
//  direct: nothing to route; the datapath gets the uplink ifindex and gateway.
//  both:   rp_filter loose (2) on the uplink: tunnelled packets come back in through it
//          with a pod source address whose route is a veth, which strict mode (1) drops.
//          The kernel uses max(conf/all, conf/<dev>), so the uplink alone is enough.
// The returned nf_config patch turns the datapath flag on only when that worked; the
// caller writes it after this returns, then removes the routes of `unroute` (the flag
// goes off before the routes go).
import fs from 'node:fs';
import path from 'node:path';
import { cidrWithin, toCidr, type Family } from '../model/ip';
import { NfCfgFlag } from '../wire/abi';
import type { Config } from '../wire/config';
import type { NativeAddon, Route, RouteRule } from '../datapath/native-api';
import type { RedirectConfig } from '../model/types';
import type { GatewayState, GatewayTarget } from './gateway-monitor';

/** rtnetlink protocol number tagging netfence-owned rules and routes ("N"). */
export const NF_RT_PROTO = 0x4e;
/** Before the main table (32766), after local (0). */
export const NF_RULE_PRIORITY = 1000;
const MAIN_TABLE = 254;

export type TunnelPatch = Pick<
  Config,
  'flags' | 'tunnelMark' | 'tunnelMarkMask' | 'uplinkIfindex' | 'gateway4' | 'gateway6'
>;

export interface TunnelResult {
  /** nf_config fields to write (flags include only the tunnel bits). */
  patch: TunnelPatch;
  /** Families with a configured gateway that the tunnel is off for. */
  off: Family[];
  /** Families whose netfence rules and routes must go once the patch is written. */
  unroute: Family[];
  /** Why the tunnel, or one family of it, stays off (missing gateway, no route...). */
  error?: string;
}

const OFF_FLAG: Record<Family, number> = { 4: NfCfgFlag.TUNNEL_OFF4, 6: NfCfgFlag.TUNNEL_OFF6 };

const OFF: TunnelPatch = {
  flags: 0,
  tunnelMark: 0,
  tunnelMarkMask: 0,
  uplinkIfindex: 0,
  gateway4: undefined,
  gateway6: undefined,
};

function contains(cidr: string, ip: string): boolean {
  return cidrWithin(toCidr(ip), toCidr(cidr));
}

/** A main-table route that reaches `gw` out of `oif` (connected or via another hop). */
function reachable(routes: Route[], gw: string, oif: number): boolean {
  return routes.some((r) => r.oif === oif && contains(r.dst, gw));
}

/** What the tunnel sets on the uplink: loose reverse-path filtering. */
export const RP_FILTER_LOOSE = '2';

/** The rp_filter sysctl of an interface under `procRoot` (/proc: the caller's netns). */
export function rpFilterSysctl(procRoot: string, ifname: string): string {
  return path.join(procRoot, 'sys/net/ipv4/conf', ifname, 'rp_filter');
}

export interface TunnelOptions {
  procRoot?: string; // default /proc (the agent's own netns)
}

/** The gateways of the configured families (what the monitor probes). */
export function tunnelGateways(cfg: RedirectConfig): GatewayTarget[] {
  const gateways: GatewayTarget[] = [];
  if (cfg.gateway) gateways.push({ family: 4, address: cfg.gateway });
  if (cfg.gateway6) gateways.push({ family: 6, address: cfg.gateway6 });
  return gateways;
}

/** `gateways`: the monitor's states of tunnelGateways(cfg). Each family is tunnelled while
 *  its gateway is reachable and answers; the others flow directly (their OFF flag set). */
export function ensureTunnel(
  addon: NativeAddon,
  cfg: RedirectConfig,
  gateways: GatewayState[],
  opts: TunnelOptions = {},
): TunnelResult {
  const configured = gateways.map((g) => g.family).sort((a, b) => a - b);
  const fail = (error: string): TunnelResult => ({
    patch: OFF,
    off: configured,
    unroute: [4, 6],
    error: `enable transparent tunnel (${cfg.mode}): ${error}`,
  });
  const uplink = addon.linkByName(cfg.uplink);
  if (!uplink) return fail(`uplink ${cfg.uplink} not found`);
  if (gateways.length === 0) return fail('redirect.gateway and redirect.gateway6 are both missing');
  const why = ({ family, address, answering, cause }: GatewayState): string | undefined => {
    if (!reachable(addon.routeList(family, MAIN_TABLE), address, uplink.ifindex))
      return `gateway ${address} is not reachable: no route to it via ${cfg.uplink}`;
    if (!answering)
      return `gateway ${address} does not answer on ${cfg.uplink} (IPv${family} neighbour probe: ${cause ?? 'no answer'})`;
    return undefined;
  };
  const down = gateways.flatMap((g) => {
    const error = why(g);
    return error ? [{ family: g.family, error }] : [];
  });
  const causes = down.map((d) => d.error).join('; ');
  const up = gateways.filter((g) => !down.some((d) => d.family === g.family));
  if (up.length === 0) return fail(causes);
  const off = down.map((d) => d.family).sort((a, b) => a - b);
  const offFlags = off.reduce((flags, f) => flags | OFF_FLAG[f], 0);
  const error =
    down.length > 0
      ? `transparent tunnel (${cfg.mode}) off for ${off.map((f) => `IPv${f}`).join(', ')}: ${causes}`
      : undefined;

  const procRoot = opts.procRoot ?? '/proc';
  try {
    fs.writeFileSync(rpFilterSysctl(procRoot, cfg.uplink), RP_FILTER_LOOSE);
    if (cfg.mode === 'direct') {
      const patch = {
        ...OFF,
        flags: NfCfgFlag.TUNNEL_DIRECT | offFlags,
        uplinkIfindex: uplink.ifindex,
        gateway4: cfg.gateway,
        gateway6: cfg.gateway6,
      };
      return { patch, off, unroute: [4, 6], error };
    }
    for (const { family, address } of up) {
      addon.routeReplace({
        family,
        table: cfg.table,
        dst: family === 4 ? '0.0.0.0/0' : '::/0',
        gateway: address,
        oif: uplink.ifindex,
        protocol: NF_RT_PROTO,
      });
      addon.ruleAdd({
        family,
        priority: NF_RULE_PRIORITY,
        mark: cfg.mark,
        mask: cfg.mark,
        table: cfg.table,
        protocol: NF_RT_PROTO,
      });
    }
  } catch (e) {
    return fail((e as Error).message);
  }
  const unroute = ([4, 6] as const).filter((f) => !up.some((g) => g.family === f));
  return {
    patch: { ...OFF, flags: NfCfgFlag.TUNNEL_FWMARK | offFlags, tunnelMark: cfg.mark, tunnelMarkMask: cfg.mark },
    off,
    unroute,
    error,
  };
}

/** Every netfence-owned rule of `families`, and the owned routes of their tables and of
 *  `table` (found also after their rule is gone). */
export function ownedRouting(
  addon: NativeAddon,
  table?: number,
  families: readonly Family[] = [4, 6],
): { rules: RouteRule[]; routes: Route[] } {
  const rules: RouteRule[] = [];
  const routes: Route[] = [];
  for (const family of families) {
    const tables = new Set<number>(table === undefined ? [] : [table]);
    for (const rule of addon.ruleList(family)) {
      if (rule.protocol !== NF_RT_PROTO) continue;
      tables.add(rule.table);
      rules.push(rule);
    }
    for (const t of tables) routes.push(...addon.routeList(family, t).filter((r) => r.protocol === NF_RT_PROTO));
  }
  return { rules, routes };
}

/** Remove every netfence-owned rule of `families` and the owned routes of their tables
 *  (idempotent). */
export function removeTunnel(addon: NativeAddon, table?: number, families: readonly Family[] = [4, 6]): void {
  const { rules, routes } = ownedRouting(addon, table, families);
  for (const rule of rules) addon.ruleDelete(rule);
  for (const route of routes) addon.routeDelete(route);
}

export const TUNNEL_OFF = OFF;
