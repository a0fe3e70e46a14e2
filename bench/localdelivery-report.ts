// Local delivery's default against its measurement (bench/localdelivery.ts): the target
// row and the table rows shared by REPORT.md and the console. Pure: the smoke test checks
// it on fixtures.
import { defaultConfig } from '../src/model/config';
import type { LocalDeliveryCaseName, LocalDeliveryResults, TargetResult } from './types';

/** Policy on the node x localDelivery, in the order of the table. */
export const LOCAL_DELIVERY_CASES: readonly LocalDeliveryCaseName[] = [
  'nopolicy_on',
  'nopolicy_off',
  'policy_on',
  'policy_off',
];

/** localDelivery when the NetfenceConfig does not name it. */
export function defaultLocalDelivery(): boolean {
  return defaultConfig().localDelivery;
}

const onOff = (on: boolean): 'on' | 'off' => (on ? 'on' : 'off');

/** The default is the faster setting: the value is the geometric mean, over the node
 *  without and with a policy, of (default's x bare) / (other's x bare) conn/s. */
export function localDeliveryDefaultTarget(r: LocalDeliveryResults | undefined): TargetResult {
  const base = { name: 'local_delivery_default', op: '>=' as const, limit: 1, unit: 'x' };
  const dflt = onOff(r ? r.defaultOn : defaultLocalDelivery());
  const other = onOff(dflt === 'off');
  const description =
    `default localDelivery (src/model/config.ts: ${dflt}) is the faster: ${dflt}/${other} conn/s ` +
    '(each x bare in tight pairs), geometric mean of no policy and policy';
  if (!r) return { ...base, description, value: null, pass: null };
  const gain = (policy: 'nopolicy' | 'policy'): number =>
    r.cases[`${policy}_${dflt}` as const].ratio / r.cases[`${policy}_${other}` as const].ratio;
  const value = Math.sqrt(gain('nopolicy') * gain('policy'));
  return { ...base, description, value, pass: Number.isFinite(value) ? value >= base.limit : null };
}

/** Header and one row per case: conn/s x bare, the pods' CPU per connection (case, bare, ratio). */
export function localDeliveryRows(r: LocalDeliveryResults): string[][] {
  return [
    ['local delivery', 'conn/s x bare', 'CPU µs/conn', 'bare', 'CPU x bare'],
    ...LOCAL_DELIVERY_CASES.map((name) => {
      const c = r.cases[name];
      const [policy, ld] = name.split('_');
      return [
        `${policy === 'policy' ? 'policy' : 'no policy'}, ${ld}${(ld === 'on') === r.defaultOn ? ' (default)' : ''}`,
        c.ratio.toFixed(3),
        c.cpuUsPerConn.variant.toFixed(1),
        c.cpuUsPerConn.bare.toFixed(1),
        c.cpuRatio.toFixed(3),
      ];
    }),
  ];
}
