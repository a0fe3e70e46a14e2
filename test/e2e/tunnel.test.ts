// The transparent tunnel through `netfence agent` on a lab node, in both modes: same-node
// pod-to-pod traffic leaves through the uplink, passes the gateway (the fabric netns counts
// it with an iptables counter) and comes back; policies still apply; DNS-like UDP through an
// iptables-DNAT ClusterIP to a same-node backend is measured per mode: neither mode may lose a
// query (the backend's reply is not tunnelled: the request came untunnelled). Which mode is
// faster is a benchmark's question (`npm run bench`, lab part: interleaved rounds, a ratio),
// not a test's: one timing on a loaded 2-core machine decides nothing.
import test from 'ava';
import { run, labScript } from '../../src/lab/exec';
import { fabricCounters } from '../../src/lab/probe';
import { parseNetfenceConfig } from '../../src/model/config';
import { Field } from '../../src/model/field';
import { AgentLab, DEMO_NAMESPACE, demoPod, labConfig, NODE_N1 } from './helpers/agent-lab';

const PODS = [
  DEMO_NAMESPACE,
  demoPod('a', '10.244.1.2', { udp53: true }),
  demoPod('b', '10.244.1.3', { udp53: true }),
  demoPod('dns', '10.244.1.9', { udp53: true }),
  NODE_N1,
  `apiVersion: v1
kind: Service
metadata: { name: dns, namespace: demo }
spec: { clusterIP: 10.96.0.10, selector: { app: dns }, ports: [{ port: 53, targetPort: 53, protocol: UDP }] }
`,
].join('---\n');

const TUNNEL = (mode: string): string => labConfig(`redirect: { mode: ${mode}, uplink: eth0, gateway: 169.254.0.1 }\n`);

const QUERIES = 1000;

interface Measure {
  mode: string;
  lost: number;
  udpMs: number;
  tcpMs: number;
}

let lab: AgentLab;

test.before(async () => {
  lab = await AgentLab.up('tunnel', { 'pods.yaml': PODS, 'netfence.yaml': labConfig() });
});
test.after.always(async () => {
  await lab?.down();
});

const hairpins = async (): Promise<number> => (await fabricCounters(lab.state)).get('hairpin:n1') ?? 0;

/** 1000 single-datagram queries to the ClusterIP (fresh source port each, 2 s to answer: a
 *  conntrack collision loses the reply for good, while a client descheduled on a loaded
 *  2-core machine must not count as loss) and 200 concurrent TCP connects to b. */
async function measure(mode: string): Promise<Measure> {
  const netns = lab.podNetns('demo/a');
  let start = Date.now();
  const { stdout } = await run(
    [
      'ip',
      'netns',
      'exec',
      netns,
      process.execPath,
      labScript('client'),
      'udpflood',
      '10.96.0.10',
      '53',
      String(QUERIES),
      '2000',
    ],
    undefined,
    120_000,
  );
  const udpMs = Date.now() - start;
  const { received } = JSON.parse(stdout) as { received: number };
  start = Date.now();
  const targets = Array.from({ length: 200 }, () => ({ from: 'demo/a', to: 'demo/b', port: '80/TCP' }));
  const tcp = await lab.probe(targets, 3000);
  const tcpMs = Date.now() - start;
  if (tcp.some((v) => v !== 'allow'))
    throw new Error(`measure ${mode}: ${tcp.filter((v) => v !== 'allow').length} of 200 TCP connects failed`);
  return { mode, lost: QUERIES - received, udpMs, tcpMs };
}

const results: Measure[] = [];

const rpFilter = async (): Promise<string> =>
  (await lab.exec(lab.node().netns, ['sysctl', '-n', 'net.ipv4.conf.eth0.rp_filter'])).trim();

test.serial('tunnel off: same-node traffic stays on the node (baseline)', async (t) => {
  await lab.exec(lab.node().netns, ['sysctl', '-qw', 'net.ipv4.conf.eth0.rp_filter=1']);
  await lab.startAgent();
  t.is(await rpFilter(), '1', 'no tunnel: the uplink keeps strict reverse-path filtering');
  const before = await hairpins();
  t.deepEqual(await lab.probe([{ from: 'demo/a', to: 'demo/b', port: '80/TCP' }]), ['allow']);
  t.is(await hairpins(), before);
  results.push(await measure('off'));
  t.log(JSON.stringify(results.at(-1)));
});

for (const mode of ['fwmark', 'direct']) {
  test.serial(
    `tunnel ${mode}: same-node pod traffic hairpins through the gateway and back; policy applies; DNS through a ClusterIP measured`,
    async (t) => {
      const t0 = Date.now();
      lab.write('netfence.yaml', TUNNEL(mode));
      const [ready] = await lab.ready();
      t.log(`mode switch applied in ${Date.now() - t0} ms`);
      t.like(ready.body, { tunnel: { mode, enabled: true } }, JSON.stringify(ready.body));
      t.is(await rpFilter(), '2', 'loose on the uplink: the replies come back in through it');

      const before = await hairpins();
      const r = await lab.probeFull([
        { from: 'demo/a', to: 'demo/b', port: '80/TCP' },
        { from: 'demo/a', to: 'demo/b', port: '53/UDP' },
      ]);
      t.deepEqual(
        r.map((x) => x.verdict),
        ['allow', 'allow'],
      );
      t.is(r[0].reply, 'netfence demo/b', 'the answer came back through the gateway');
      const counted = (await hairpins()) - before;
      t.true(counted >= 4, `the gateway counted ${counted} hairpinned packets`);

      const m = await measure(mode);
      results.push(m);
      t.log(JSON.stringify(m));
      t.is(m.lost, 0, `${mode}: no DNS query lost through a same-node ClusterIP`);

      lab.write(
        'isolate-b.yaml',
        'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: isolate-b, namespace: demo }\nspec: { podSelector: { matchLabels: { app: b } }, policyTypes: [Ingress] }\n',
      );
      await lab.ready();
      t.deepEqual(
        await lab.probe([
          { from: 'demo/a', to: 'demo/b', port: '80/TCP' },
          { from: 'demo/b', to: 'demo/a', port: '80/TCP' },
        ]),
        ['deny', 'allow'],
        'policy still applies',
      );
      lab.remove('isolate-b.yaml');
      await lab.ready();
    },
  );
}

test.serial("turning the tunnel off puts the uplink's rp_filter back", async (t) => {
  lab.write('netfence.yaml', labConfig());
  const [ready] = await lab.ready();
  t.is((ready.body as { tunnel?: unknown }).tunnel, undefined, 'no tunnel configured');
  t.is(await rpFilter(), '1');
});

test.serial('the default tunnel mode and the other one lose no DNS query', (t) => {
  t.log(`measured (${QUERIES} UDP queries via a same-node ClusterIP; 200 concurrent TCP connects):`);
  for (const m of results)
    t.log(`  ${m.mode.padEnd(6)} lost ${m.lost}/${QUERIES}, udp ${m.udpMs} ms, tcp ${m.tcpMs} ms`);
  const dflt = parseNetfenceConfig(
    new Field({
      apiVersion: 'netfence.io/v1alpha1',
      kind: 'NetfenceConfig',
      metadata: { name: 'x' },
      serviceCIDRs: [],
      redirect: { uplink: 'eth0' },
    }),
  ).redirect!.mode;
  const chosen = results.find((m) => m.mode === dflt)!;
  const other = results.find((m) => m.mode !== dflt && m.mode !== 'off')!;
  t.truthy(chosen, `default mode ${dflt} was measured`);
  t.is(chosen.lost, 0, `default mode ${dflt} loses no query`);
  t.truthy(other, 'the other mode was measured');
  t.is(other.lost, 0, `${other.mode} loses no query either`);
});
