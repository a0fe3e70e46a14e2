// `netfence agent` in a node netns with real pod veths: policy changes flip real TCP and
// UDP probes; kill -9, SIGTERM and restarts keep enforcement (pins stay, the new agent
// adopts them).
import test from 'ava';
import { native } from '../../src/datapath/native';
import { NodeFixture } from './helpers/netns';

const PODS = `
apiVersion: v1
kind: Namespace
metadata: { name: demo }
---
apiVersion: v1
kind: Pod
metadata: { name: a, namespace: demo, labels: { app: a } }
spec: { nodeName: n1, containers: [{ name: c, image: x }] }
status: { podIPs: [{ ip: 10.244.0.2 }] }
---
apiVersion: v1
kind: Pod
metadata: { name: b, namespace: demo, labels: { app: b } }
spec: { nodeName: n1, containers: [{ name: c, image: x, ports: [{ containerPort: 8080 }, { containerPort: 5353, protocol: UDP }] }] }
status: { podIPs: [{ ip: 10.244.0.3 }] }
---
apiVersion: v1
kind: Node
metadata: { name: n1 }
status: { addresses: [{ type: InternalIP, address: 10.0.0.11 }] }
`;

const DENY_B = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: deny-b, namespace: demo }
spec:
  podSelector: { matchLabels: { app: b } }
  policyTypes: [Ingress]
`;

const TARGETS = [
  { ip: '10.244.0.3', port: 8080, protocol: 'TCP' as const },
  { ip: '10.244.0.3', port: 5353, protocol: 'UDP' as const },
];

const haveNetlink = typeof (native as unknown as Record<string, unknown>).linkWatch === 'function' && typeof (native as unknown as Record<string, unknown>).routeList === 'function';

test.serial('policy add/remove flips TCP and UDP; kill -9, SIGTERM and restart keep enforcement', async (t) => {
  if (!haveNetlink) {
    t.log('skip: the native addon has no linkList/routeList/linkWatch yet');
    t.pass();
    return;
  }
  t.log('SCTP: skipped, this kernel has no SCTP support (CONFIG_IP_SCTP off)');
  const n = new NodeFixture(t, 'agent');
  n.addPod({ name: 'a', ip: '10.244.0.2', hostIf: 'nfa' });
  n.addPod({ name: 'b', ip: '10.244.0.3', hostIf: 'nfb' });
  await n.serve('b', ['8080/TCP', '5353/UDP']);
  n.writeState('pods.yaml', PODS);
  t.deepEqual(n.probe('a', TARGETS), ['allow', 'allow'], 'no agent, no policy');

  const port = 19000 + (process.pid % 1000);
  let agent = await n.startAgent(port);
  const r1 = n.readyz(port, 1);
  t.is(r1.endpoints, 2, n.agentLog());
  t.deepEqual(n.probe('a', TARGETS), ['allow', 'allow'], 'agent, no policy');

  n.writeState('deny.yaml', DENY_B);
  const r2 = n.readyz(port, 2);
  t.not(r2.stateHash, r1.stateHash);
  t.deepEqual(n.probe('a', TARGETS), ['deny', 'deny'], 'deny-all ingress on b');

  agent.kill('SIGKILL');
  await new Promise((r) => agent.once('exit', r));
  t.deepEqual(n.probe('a', TARGETS), ['deny', 'deny'], 'after kill -9');

  agent = await n.startAgent(port);
  n.readyz(port, 1);
  t.deepEqual(n.probe('a', TARGETS), ['deny', 'deny'], 'restarted agent adopted the pins');
  agent.kill('SIGTERM');
  await new Promise((r) => agent.once('exit', r));
  t.regex(n.agentLog(), /enforcement stays pinned/);
  t.deepEqual(n.probe('a', TARGETS), ['deny', 'deny'], 'after SIGTERM');

  n.removeState('deny.yaml');
  agent = await n.startAgent(port);
  n.readyz(port, 1);
  t.deepEqual(n.probe('a', TARGETS), ['allow', 'allow'], 'policy removed while the agent was down, applied at start');
  agent.kill('SIGTERM');
});
