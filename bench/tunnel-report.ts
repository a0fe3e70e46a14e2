// The transparent tunnel's default mode against its measurement (bench/tunnel.ts): the
// target row and the table rows shared by REPORT.md and the console. Pure: the smoke test
// checks it on fixtures.
import { parseNetfenceConfig } from '../src/model/config';
import { Field } from '../src/model/field';
import type { RedirectConfig } from '../src/model/types';
import { ratio } from './stats';
import type { TargetResult, TunnelResults } from './types';

export const TUNNEL_MODES = ['off', 'fwmark', 'direct'] as const;

/** The mode a NetfenceConfig gets when its redirect section names none. */
export function defaultTunnelMode(): RedirectConfig['mode'] {
  const doc = {
    apiVersion: 'netfence.io/v1alpha1',
    kind: 'NetfenceConfig',
    metadata: { name: 'x' },
    serviceCIDRs: [],
    redirect: { uplink: 'eth0' },
  };
  return parseNetfenceConfig(new Field(doc)).redirect!.mode;
}

const otherMode = (m: RedirectConfig['mode']): RedirectConfig['mode'] => (m === 'direct' ? 'fwmark' : 'direct');

/** Lossless through the same-node ClusterIP, and no lossless mode is faster: the value is
 *  default/other conn/s; a lossy other mode cannot win on speed. */
export function tunnelDefaultTarget(t: TunnelResults | undefined): TargetResult {
  const base = { name: 'tunnel_default_mode', op: '>=' as const, limit: 1, unit: 'x' };
  const what = 'is lossless and the faster lossless mode';
  if (!t) {
    return {
      ...base,
      description: `default tunnel mode (src/model/config.ts) ${what}: default/other conn/s`,
      value: null,
      pass: null,
    };
  }
  const dflt = t.defaultMode;
  const other = otherMode(dflt);
  const value = ratio(t[dflt].connPerSec, t[other].connPerSec);
  const losses = [dflt, other]
    .filter((m) => t[m].dnsLost > 0)
    .map((m) => `${m} lost ${t[m].dnsLost}/${t[m].dnsQueries} DNS queries`);
  const pass = Number.isNaN(value) ? null : t[dflt].dnsLost === 0 && (t[other].dnsLost > 0 || value >= base.limit);
  const description = `default tunnel mode (src/model/config.ts: ${dflt}) ${what}: ${dflt}/${other} conn/s${losses.length ? ` (${losses.join(', ')})` : ''}`;
  return { ...base, description, value, pass };
}

/** Header and one row per mode: conn/s (median), ratio to off, DNS lost / sent. */
export function tunnelRows(t: TunnelResults): string[][] {
  return [
    ['tunnel mode', 'conn/s', 'x off', 'DNS lost'],
    ...TUNNEL_MODES.map((m) => [
      m === t.defaultMode ? `${m} (default)` : m,
      String(Math.round(t[m].connPerSec)),
      ratio(t[m].connPerSec, t.off.connPerSec).toFixed(2),
      `${t[m].dnsLost}/${t[m].dnsQueries}`,
    ]),
  ];
}
