// The tunnel-mode benchmark's verdict on the default mode (bench/tunnel-report), on fixtures.
import test from 'ava';
import { evaluateTargets, renderReport } from '../../bench/report';
import { defaultTunnelMode, tunnelDefaultTarget, tunnelRows } from '../../bench/tunnel-report';
import type { TunnelModeResult, TunnelResults } from '../../bench/types';
import { benchResults } from '../helpers/bench-results';

const mode = (connPerSec: number, dnsLost = 0): TunnelModeResult => ({
  connPerSec,
  connPerSecSamples: [connPerSec],
  dnsLost,
  dnsQueries: 5000,
  hairpinPackets: 0,
});

const tunnel = (
  defaultMode: 'fwmark' | 'direct',
  fwmark: TunnelModeResult,
  direct: TunnelModeResult,
): TunnelResults => ({
  rounds: 5,
  crrSeconds: 5,
  defaultMode,
  off: mode(4000),
  fwmark,
  direct,
});

test('the default mode comes from the config parser', (t) => {
  t.true(['fwmark', 'direct'].includes(defaultTunnelMode()));
});

test('default tunnel mode target: not run without a measurement', (t) => {
  const r = tunnelDefaultTarget(undefined);
  t.is(r.pass, null);
  t.is(r.value, null);
});

test('default tunnel mode target: lossless and at least as fast as the other passes, slower fails', (t) => {
  const faster = tunnelDefaultTarget(tunnel('direct', mode(3000), mode(3300)));
  t.true(faster.pass);
  t.is(faster.value, 1.1);
  t.regex(faster.description, /direct\/fwmark conn\/s/);
  const slower = tunnelDefaultTarget(tunnel('fwmark', mode(3000), mode(3300)));
  t.false(slower.pass);
  t.is(slower.value, 3000 / 3300);
});

test('default tunnel mode target: a lossy default fails however fast; a lossy other mode cannot win on speed', (t) => {
  const lossyDefault = tunnelDefaultTarget(tunnel('direct', mode(3000), mode(6000, 3)));
  t.false(lossyDefault.pass);
  t.regex(lossyDefault.description, /direct lost 3\/5000 DNS queries/);
  const lossyOther = tunnelDefaultTarget(tunnel('direct', mode(6000, 2500), mode(3000)));
  t.true(lossyOther.pass);
  t.is(lossyOther.value, 0.5);
});

test('tunnel rows: each mode against off, the default marked, losses over queries', (t) => {
  t.deepEqual(tunnelRows(tunnel('direct', mode(2000), mode(6000, 1))), [
    ['tunnel mode', 'conn/s', 'x off', 'DNS lost'],
    ['off', '4000', '1.00', '0/5000'],
    ['fwmark', '2000', '0.50', '0/5000'],
    ['direct (default)', '6000', '1.50', '1/5000'],
  ]);
});

test('the report carries the tunnel target and table', (t) => {
  const r = benchResults({ tunnel: tunnel('direct', mode(3000), mode(3400)) });
  const target = evaluateTargets(r).find((x) => x.name === 'tunnel_default_mode');
  t.true(target?.pass);
  const md = renderReport(r);
  t.regex(md, /## Transparent tunnel modes \(lab\)/);
  t.regex(md, /\| direct \(default\) \| 3400 \| 0\.85 \| 0\/5000 \|/);
  t.regex(md, /default tunnel mode \(src\/model\/config\.ts: direct\).*\| 1\.133 x \| >= 1 x \| PASS \|/);
});
