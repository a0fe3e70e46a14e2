// Every metric of `netfence agent` moves when its event happens, on a lab node with real
// pods: allowed and denied packets per endpoint (b and c share one table, yet only the
// endpoint that saw the traffic counts it), rule hits, drops by reason, generation and
// durations, validation errors (a bad object keeps its last valid version), map fill ratios and
// flow-log suppression. /metrics is scraped from inside the node netns.
import test, { type ExecutionContext } from 'ava';
import { AgentLab, demoPod, demoPodsAbc, labConfig } from './helpers/agent-lab';

// b and c get the same ingress rule list (one policy selects both): one shared table.
const WEB = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: web, namespace: demo }
spec:
  podSelector: { matchExpressions: [{ key: app, operator: In, values: [b, c] }] }
  policyTypes: [Ingress]
  ingress: [{ from: [{ podSelector: { matchLabels: { app: a } } }], ports: [{ port: 80 }] }]
`;

// An egress table for a that allows everything: new nf_rules entries, same verdicts.
const A_EGRESS_ANY = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: a-egress-any, namespace: demo }
spec: { podSelector: { matchLabels: { app: a } }, policyTypes: [Egress], egress: [{}] }
`;

const FILES = {
  'pods.yaml': demoPodsAbc({ udp53: true }),
  // drop events up to 1000/s per endpoint reach the agent, which logs 50/s
  'netfence.yaml': labConfig('eventsPerSecond: 1000\n'),
  'web.yaml': WEB,
};

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text exposition -> samples (the agent's labels need no escapes). */
function parse(text: string): Sample[] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(l);
      if (!m) throw new Error(`parse metrics line "${l}"`);
      const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
      return { name: m[1], labels, value: Number(m[3]) };
    });
}

class Scrape {
  constructor(readonly samples: Sample[]) {}
  /** Sum of the series of `name` whose labels include `labels`; throws when there is none. */
  get(name: string, labels: Record<string, string> = {}): number {
    const hits = this.samples.filter(
      (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
    );
    if (hits.length === 0) throw new Error(`metric ${name}${JSON.stringify(labels)}: no series`);
    return hits.reduce((n, s) => n + s.value, 0);
  }
  series(name: string): Sample[] {
    return this.samples.filter((s) => s.name === name);
  }
}

let lab: AgentLab;
const scrape = async (): Promise<Scrape> => new Scrape(parse(await lab.http('/metrics')));
const packets = (s: Scrape, p: string, direction: string, verdict: string): number =>
  s.get('netfence_endpoint_packets', { pod: `demo/${p}`, direction, verdict });
/** The table of b and c (the web policy's rules live there only). */
const webTable = (s: Scrape): string => {
  const tables = new Set(
    s
      .series('netfence_rule_hits')
      .filter((x) => x.labels.policy.includes('web'))
      .map((x) => x.labels.table),
  );
  if (tables.size !== 1) throw new Error(`web policy: expected one shared table, got ${[...tables].join(', ')}`);
  return [...tables][0];
};

/** Scrapes until `moved` holds (events reach the agent asynchronously). */
async function until(t: ExecutionContext, what: string, moved: (s: Scrape) => boolean, ms = 10_000): Promise<Scrape> {
  for (const deadline = Date.now() + ms; ;) {
    const s = await scrape();
    if (moved(s)) return s;
    if (Date.now() > deadline) {
      t.log(lab.agentLog().slice(-2000));
      throw new Error(`wait for ${what}: no change in ${ms} ms`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until no endpoint's denied counters moved for `quietMs`: the kernel's own traffic right
 *  after the veths came up (IPv6 MLD reports from the node's side, which b's ingress table denies)
 *  would otherwise land inside a test's window on a loaded host. */
async function settled(quietMs = 2500, ms = 30_000): Promise<void> {
  const denied = (s: Scrape): string =>
    JSON.stringify(s.series('netfence_endpoint_packets').filter((x) => x.labels.verdict === 'denied'));
  let last = denied(await scrape());
  for (let since = Date.now(), deadline = since + ms; Date.now() - since < quietMs;) {
    if (Date.now() > deadline) throw new Error(`denied counters still moving after ${ms} ms: ${last}`);
    await new Promise((r) => setTimeout(r, 250));
    const now = denied(await scrape());
    if (now !== last) [last, since] = [now, Date.now()];
  }
}

test.before(async () => {
  lab = await AgentLab.up('metrics', FILES);
  await lab.startAgent();
  await settled();
});
test.after.always(async () => {
  await lab?.down();
});

test.serial(
  'allowed traffic counts on the endpoint that saw it, not on the other endpoint of its shared table',
  async (t) => {
    const before = await scrape();
    const table = webTable(before);
    t.is(before.get('netfence_endpoints'), 4, 'a, b, c and the uplink');
    const forwarded = async () =>
      Number(
        (await lab.exec(lab.node().netns, ['cat', '/proc/net/snmp']))
          .split('\n')
          .find((l) => /^Ip: \d/.test(l))!
          .split(/\s+/)[6],
      );
    const fwdBefore = await forwarded();
    t.deepEqual(await lab.probe([{ from: 'demo/a', to: 'demo/b', port: '80/TCP' }]), ['allow']);
    const after = await scrape();
    t.is(await forwarded(), fwdBefore, 'delivered locally: the node forwarded none of it (Ip ForwDatagrams)');
    const d = (p: string, dir: string, v: string) => packets(after, p, dir, v) - packets(before, p, dir, v);
    const ruleHits =
      after.get('netfence_rule_hits', { table, action: 'allow' }) -
      before.get('netfence_rule_hits', { table, action: 'allow' });
    t.log(
      `b ingress allowed +${d('b', 'ingress', 'allowed')}, a egress allowed +${d('a', 'egress', 'allowed')}, allow rule hits +${ruleHits}`,
    );
    t.is(ruleHits, 1, 'the allow rule decided the connection once (first packet)');
    t.true(d('b', 'ingress', 'allowed') >= 3, 'every packet of the connection toward b counts, established ones too');
    t.true(d('b', 'egress', 'allowed') >= 2, "b's replies count on its egress (no table: allowed)");
    t.true(
      d('a', 'egress', 'allowed') >= 3,
      'a, which no policy selects, delivers locally: its packets count on its egress',
    );
    t.is(d('c', 'ingress', 'allowed'), 0, "c shares b's table but saw nothing");
    t.is(d('b', 'ingress', 'denied'), 0);
    const bytes =
      after.get('netfence_endpoint_bytes', { pod: 'demo/b', direction: 'ingress', verdict: 'allowed' }) -
      before.get('netfence_endpoint_bytes', { pod: 'demo/b', direction: 'ingress', verdict: 'allowed' });
    t.true(bytes >= 54 * d('b', 'ingress', 'allowed'), 'bytes: at least an Ethernet+IPv4+TCP header per packet');
  },
);

test.serial(
  'a denied probe counts as denied on the endpoint, on the isolation rule and as an isolation drop',
  async (t) => {
    const before = await scrape();
    const table = webTable(before);
    t.deepEqual(await lab.probe([{ from: 'demo/c', to: 'demo/b', port: '80/TCP' }]), ['deny']);
    const after = await scrape();
    const denied = packets(after, 'b', 'ingress', 'denied') - packets(before, 'b', 'ingress', 'denied');
    const isolation = { table, rule: 'isolation', action: 'deny' };
    t.true(denied >= 1, 'the SYN (and its retries) toward b');
    t.is(
      after.get('netfence_rule_hits', isolation) - before.get('netfence_rule_hits', isolation),
      denied,
      'each dropped SYN was a policy evaluation of the isolation rule',
    );
    t.is(
      after.get('netfence_drop_packets', { reason: 'isolated' }) -
        before.get('netfence_drop_packets', { reason: 'isolated' }),
      denied,
    );
    t.is(
      packets(after, 'c', 'ingress', 'denied') - packets(before, 'c', 'ingress', 'denied'),
      0,
      'nothing denied toward c',
    );
    t.true(
      packets(after, 'c', 'egress', 'allowed') > packets(before, 'c', 'egress', 'allowed'),
      "c's own egress allowed the SYN out",
    );
  },
);

test.serial(
  'a state change: new generation, reconcile and compile timed; a new pod fills nf_ident_exact, a new table nf_rules',
  async (t) => {
    const before = await scrape();
    const fill = (s: Scrape, map: string) => s.get('netfence_map_fill_ratio', { map });
    // a pod on another node: an identity (exact address) but no local endpoint
    lab.write('more.yaml', `${demoPod('d', '10.244.2.9', { udp53: true, node: 'n2' })}---\n${A_EGRESS_ANY}`);
    const [ready] = await lab.ready();
    const after = await scrape();
    t.is(after.get('netfence_applied_generation'), before.get('netfence_applied_generation') + 1);
    t.is(after.get('netfence_applied_generation'), ready.generation, 'the generation /readyz reports');
    for (const h of ['netfence_reconcile_duration_seconds', 'netfence_compile_duration_seconds']) {
      t.true(after.get(`${h}_count`) > before.get(`${h}_count`), `${h} observed the pass`);
      t.true(after.get(`${h}_sum`) > before.get(`${h}_sum`), `${h} took time`);
    }
    const entries = (s: Scrape, map: string, max: number) => Math.round(fill(s, map) * max);
    t.is(
      entries(after, 'nf_ident_exact', 65536) - entries(before, 'nf_ident_exact', 65536),
      1,
      'one new exact address: d',
    );
    t.true(fill(after, 'nf_rules') > fill(before, 'nf_rules'), "a's new egress table");
    t.false(
      after
        .series('netfence_map_fill_ratio')
        .some((s) => ['nf_config', 'nf_events', 'nf_reason_stats', 'nf_ep_counters'].includes(s.labels.map)),
      'no ratio for arrays and the ring buffer',
    );
  },
);

test.serial(
  'invalid input: one validate error per bad object, counted once; a bad edit keeps its old rules, the rest applies',
  async (t) => {
    const errors = (s: Scrape) =>
      s
        .series('netfence_errors_total')
        .filter((x) => x.labels.stage === 'validate')
        .reduce((n, x) => n + x.value, 0);
    const status = async () => JSON.parse(await lab.http('/readyz')) as { errors: string[]; generation: number };
    const matrix = [
      { from: 'demo/a', to: 'demo/b', port: '80/TCP' },
      { from: 'demo/c', to: 'demo/b', port: '80/TCP' },
      { from: 'demo/b', to: 'demo/a', port: '80/TCP' },
      { from: 'demo/c', to: 'demo/a', port: '80/TCP' },
    ];
    t.deepEqual(
      await lab.probe(matrix),
      ['allow', 'deny', 'allow', 'allow'],
      'before: web isolates b and c, a and c egress are open',
    );
    const before = await scrape();
    // One step: web edited to an invalid CIDR (its old rules must stay: dropping it would let
    // c reach b), a new invalid policy isolating everything (skipped), and a valid new policy
    // isolating c's egress (applies).
    lab.write(
      'web.yaml',
      WEB.replace('ingress: [{ from: [', 'ingress: [{ from: [{ ipBlock: { cidr: 10.0.0.0/33 } }, '),
    );
    lab.write(
      'bad.yaml',
      'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: bad, namespace: demo }\nspec:\n  podSelector: {}\n  policyTypes: [Ingress]\n  ingress: [{ from: [{ ipBlock: { cidr: 10.0.0.0/33 } }] }]\n',
    );
    lab.write(
      'c-egress.yaml',
      'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: c-egress, namespace: demo }\nspec: { podSelector: { matchLabels: { app: c } }, policyTypes: [Egress] }\n',
    );
    const [ready] = await lab.ready();
    const after = await scrape();
    t.true(
      ready.generation > before.get('netfence_applied_generation'),
      'the step is applied (a new generation), errors and all',
    );
    t.is(errors(after) - errors(before), 2, 'one validate error per bad object');
    const listed = (await status()).errors;
    t.is(listed.length, 2, JSON.stringify(listed));
    t.true(
      listed.some((e) => e.includes('web.yaml') && e.includes('NetworkPolicy demo/web') && e.includes('ipBlock.cidr')),
      JSON.stringify(listed),
    );
    t.true(
      listed.some((e) => e.includes('bad.yaml') && e.includes('NetworkPolicy demo/bad') && e.includes('ipBlock.cidr')),
      JSON.stringify(listed),
    );
    t.deepEqual(
      await lab.probe(matrix),
      ['allow', 'deny', 'allow', 'deny'],
      'web keeps its old rules, bad is skipped, c-egress applies',
    );
    const records = lab.agentRecords();
    t.true(
      records.some((r) => r.stage === 'validate' && String(r.msg).includes('NetworkPolicy demo/bad')),
      'the log names each error',
    );
    t.true(
      records.some((r) => String(r.msg).includes('keep enforcing the last valid version of NetworkPolicy demo/web')),
    );

    // An unrelated valid change: the same errors are not counted again.
    lab.write('other.yaml', 'apiVersion: v1\nkind: Namespace\nmetadata: { name: other }\n');
    await lab.ready();
    t.is(errors(await scrape()) - errors(before), 2, 'an unchanged error set counts once');

    // web.yaml no longer parses: the objects it held keep their last valid version.
    lab.write('web.yaml', `${WEB}  bogus: [unclosed\n`);
    await lab.ready();
    const yamlError = (await status()).errors.find((e) => !e.includes('demo/bad'));
    t.true(yamlError !== undefined && /web\.yaml:\d+: .*parse YAML/.test(yamlError), String(yamlError));
    t.deepEqual(
      await lab.probe(matrix.slice(0, 2)),
      ['allow', 'deny'],
      'web still enforced from its last valid version',
    );

    lab.write('web.yaml', WEB);
    lab.remove('bad.yaml');
    lab.remove('c-egress.yaml');
    lab.remove('other.yaml');
    await lab.ready();
    t.deepEqual((await status()).errors, [], 'fixed: no errors listed');
    t.deepEqual(await lab.probe(matrix), ['allow', 'deny', 'allow', 'allow']);
  },
);

test.serial('drop events over the flow-log rate are counted as suppressed', async (t) => {
  const before = await scrape();
  const isolated = (s: Scrape) => s.get('netfence_drop_packets', { reason: 'isolated' });
  const suppressed = (s: Scrape) => s.get('netfence_flow_logs_suppressed_total');
  const flows = () => lab.agentRecords().filter((r) => r.msg === 'flow').length;
  const flowsBefore = flows();
  // 200 denied UDP datagrams in a few milliseconds: the agent logs 50 per second
  const count = 200;
  const burst = `const s=require('dgram').createSocket('udp4');let n=0;const go=()=>n++<${count}?s.send('x',53,'${lab.podIp('demo/b')}',go):s.close();go()`;
  await lab.exec(lab.podNetns('demo/c'), [process.execPath, '-e', burst]);
  const after = await until(
    t,
    'every drop event logged or suppressed',
    (s) => suppressed(s) - suppressed(before) + flows() - flowsBefore >= count,
  );
  const drops = isolated(after) - isolated(before);
  const skipped = suppressed(after) - suppressed(before);
  t.log(`drops +${drops}, flow logs +${flows() - flowsBefore}, suppressed +${skipped}`);
  t.is(drops, count, 'every datagram was dropped');
  t.true(
    skipped >= count - 100,
    `at most 50 per second logged (the burst spans at most two seconds): ${skipped} suppressed`,
  );
  t.is(skipped + flows() - flowsBefore, count, 'each drop event is either a flow record or suppressed');
});
