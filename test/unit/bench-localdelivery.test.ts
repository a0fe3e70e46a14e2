// The local-delivery benchmark's verdict on the default and its table rows
// (bench/localdelivery-report), and its CPU accounting, on fixtures.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { evaluateTargets, renderReport } from '../../bench/report';
import { procCpuSeconds } from '../../bench/localdelivery';
import { defaultLocalDelivery, localDeliveryDefaultTarget, localDeliveryRows } from '../../bench/localdelivery-report';
import type { LocalDeliveryCase, LocalDeliveryResults } from '../../bench/types';
import { benchResults } from '../helpers/bench-results';

const ldCase = (ratio: number, cpuRatio = 1 / ratio): LocalDeliveryCase => ({
  pairs: [{ bare: 4000, variant: 4000 * ratio }],
  ratio,
  cpuUsPerConn: { bare: 400, variant: 400 * cpuRatio },
  cpuRatio,
});

const results = (defaultOn: boolean, on: [number, number], off: [number, number]): LocalDeliveryResults => ({
  pairs: 8,
  pairSeconds: 2,
  policyCidrs: 100,
  defaultOn,
  cases: {
    nopolicy_on: ldCase(on[0]),
    nopolicy_off: ldCase(off[0]),
    policy_on: ldCase(on[1]),
    policy_off: ldCase(off[1]),
  },
});

test('the default comes from the config defaults', (t) => {
  t.is(typeof defaultLocalDelivery(), 'boolean');
  t.regex(
    localDeliveryDefaultTarget(undefined).description,
    new RegExp(`config.ts: ${defaultLocalDelivery() ? 'on' : 'off'}`),
  );
});

test('local delivery target: not run without a measurement', (t) => {
  const r = localDeliveryDefaultTarget(undefined);
  t.is(r.pass, null);
  t.is(r.value, null);
});

test('local delivery target: geometric mean of default/other over both policy cases', (t) => {
  // on: 1.1 and 0.9 x bare; off: 1.0 and 0.9 -> on/off = sqrt(1.1 * 1) = 1.0488
  const onFaster = localDeliveryDefaultTarget(results(true, [1.1, 0.9], [1.0, 0.9]));
  t.true(onFaster.pass);
  t.is(onFaster.value!.toFixed(4), Math.sqrt(1.1).toFixed(4));
  t.regex(onFaster.description, /config\.ts: on\) is the faster: on\/off conn\/s/);
  const offDefault = localDeliveryDefaultTarget(results(false, [1.1, 0.9], [1.0, 0.9]));
  t.false(offDefault.pass);
  t.is(offDefault.value!.toFixed(4), (1 / Math.sqrt(1.1)).toFixed(4));
  t.regex(offDefault.description, /off\/on conn\/s/);
});

test('local delivery rows: one per case, the default marked, ratios to bare', (t) => {
  const rows = localDeliveryRows(results(false, [1.02, 0.95], [1.0, 0.97]));
  t.is(rows.length, 5);
  t.deepEqual(
    rows.slice(1).map((r) => r[0]),
    ['no policy, on', 'no policy, off (default)', 'policy, on', 'policy, off (default)'],
  );
  t.deepEqual(rows[3].slice(1), ['0.950', (400 / 0.95).toFixed(1), '400.0', (1 / 0.95).toFixed(3)]);
});

test('the report carries the local delivery section and its target', (t) => {
  const r = benchResults({ localDelivery: results(true, [1.01, 0.97], [1.0, 0.96]) });
  r.targets = evaluateTargets(r);
  const target = r.targets.find((x) => x.name === 'local_delivery_default');
  t.true(target?.pass);
  const md = renderReport(r);
  t.regex(md, /## Local delivery/);
  t.regex(md, /\| policy, on \(default\) \| 0\.970 \|/);
  t.regex(md, /8 tight pairs of 2 s runs/);
});

test('procCpuSeconds reads utime + stime of a process, whatever its name', (t) => {
  // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
  const stat = '4242 (crr (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 130 0 0 20 0 5 0';
  t.is(procCpuSeconds(stat), 3.8);
  t.throws(() => procCpuSeconds('4242 (crr) S 1'), { message: /no utime and stime/ });
  t.true(procCpuSeconds(readFileSync('/proc/self/stat', 'utf8')) > 0);
});
