import test from 'ava';
import { matchesSelector } from '../../src/selectors/labels';
import {
  endpointByIp,
  endpointName,
  namedPort,
  namespaceLabels,
  peerEndpoints,
  subjectEndpoints,
} from '../../src/selectors/resolve';
import { pod, state } from './_state';

const L = { app: 'web', tier: 'front' };

test('matchLabels and matchExpressions are AND-ed; empty selects all', (t) => {
  t.true(matchesSelector({}, L));
  t.true(matchesSelector({}, {}));
  t.true(matchesSelector({ matchLabels: { app: 'web' } }, L));
  t.false(matchesSelector({ matchLabels: { app: 'web', tier: 'back' } }, L));
  t.true(matchesSelector({ matchExpressions: [{ key: 'app', operator: 'In', values: ['db', 'web'] }] }, L));
  t.false(matchesSelector({ matchExpressions: [{ key: 'app', operator: 'In', values: ['db'] }] }, L));
  t.false(matchesSelector({ matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['web'] }] }, L));
  t.true(
    matchesSelector({ matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['x'] }] }, L),
    'NotIn matches a missing key',
  );
  t.true(matchesSelector({ matchExpressions: [{ key: 'tier', operator: 'Exists' }] }, L));
  t.false(matchesSelector({ matchExpressions: [{ key: 'zone', operator: 'Exists' }] }, L));
  t.true(matchesSelector({ matchExpressions: [{ key: 'zone', operator: 'DoesNotExist' }] }, L));
  t.false(
    matchesSelector({ matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }] }, L),
  );
  t.false(matchesSelector({ matchLabels: { toString: 'x' } }, {}), 'no prototype keys');
});

test('namespace labels include kubernetes.io/metadata.name, even without a Namespace object', (t) => {
  const s = state();
  t.deepEqual(namespaceLabels(s, 'a'), { team: 'a', 'kubernetes.io/metadata.name': 'a' });
  t.deepEqual(namespaceLabels(s, 'ghost'), { 'kubernetes.io/metadata.name': 'ghost' });
});

test('peers resolve to pods and nodes', (t) => {
  const s = state();
  const names = (peer: Parameters<typeof peerEndpoints>[1]) => peerEndpoints(s, peer).map(endpointName);
  t.deepEqual(names({ kind: 'pods', namespace: 'a', podSelector: {} }), ['a/p1', 'a/p2']);
  t.deepEqual(names({ kind: 'pods', namespaceSelector: { matchLabels: { team: 'b' } } }), ['b/p1', 'b/p2']);
  t.deepEqual(names({ kind: 'pods', namespaceSelector: {}, podSelector: { matchLabels: { role: 'db' } } }), [
    'a/p2',
    'b/p2',
  ]);
  t.deepEqual(names({ kind: 'pods' }), ['a/p1', 'a/p2', 'b/p1', 'b/p2']);
  t.deepEqual(names({ kind: 'nodes', nodeSelector: { matchLabels: { role: 'edge' } } }), ['node/node-2']);
  t.deepEqual(names({ kind: 'cidr', cidr: '10.0.0.0/8', except: [] }), [], 'CIDR peers match addresses, not endpoints');
  t.deepEqual(
    subjectEndpoints(s, { kind: 'pods', namespace: 'b', podSelector: { matchLabels: { role: 'web' } } }).map(
      endpointName,
    ),
    ['b/p1'],
  );
  t.deepEqual(subjectEndpoints(s, { kind: 'nodes', nodeSelector: {} }).map(endpointName), [
    'node/node-1',
    'node/node-2',
  ]);
});

test('hostNetwork pods are their node: never selected as pods, their IPs map to the node', (t) => {
  const s = state(pod('a', 'agent', '10.0.0.1', {}, '  hostNetwork: true\n'));
  t.false(peerEndpoints(s, { kind: 'pods' }).map(endpointName).includes('a/agent'));
  t.is(endpointName(endpointByIp(s, '10.0.0.1')!), 'node/node-1');
  t.is(endpointName(endpointByIp(s, 'fd00:0:0::1')!), 'node/node-1', 'any spelling of the address');
  t.is(endpointByIp(s, '192.0.2.1'), undefined);
});

test('secondary networks: endpoints by their network-status addresses', (t) => {
  const ann = `  annotations:
    k8s.v1.cni.cncf.io/network-status: '[{"name":"cbr0","default":true,"ips":["10.1.0.9"]},{"name":"sriov-net","interface":"net1","ips":["192.168.5.9"],"device-info":{"type":"pci","version":"1.1.0","pci":{"pci-address":"0000:3b:02.1"}}}]'
`;
  const podYaml = pod('a', 'vf', '10.1.0.9').replace(
    'metadata: { name: vf, namespace: a, labels: { app: "vf" } }',
    `metadata:\n  name: vf\n  namespace: a\n  labels: { app: vf }\n${ann}`,
  );
  const s = state(podYaml);
  const vf = s.pods.find((p) => p.name === 'vf')!;
  t.deepEqual(vf.networks, [
    { network: 'a/sriov-net', interface: 'net1', ips: ['192.168.5.9'], pciAddress: '0000:3b:02.1' },
  ]);
  t.is(endpointName(endpointByIp(s, '192.168.5.9', 'a/sriov-net')!), 'a/vf');
  t.is(endpointByIp(s, '192.168.5.9'), undefined, 'not on the primary network');
  t.is(endpointByIp(s, '10.1.0.9', 'a/sriov-net'), undefined);
});

test('named ports resolve per protocol', (t) => {
  const s = state();
  const p1 = s.pods[0];
  t.is(namedPort(p1, 'http', 'TCP'), 8080);
  t.is(namedPort(p1, 'http', 'UDP'), undefined);
  t.is(namedPort(p1, 'dns', 'UDP'), 53);
  t.is(namedPort(p1, 'nope', 'TCP'), undefined);
});
