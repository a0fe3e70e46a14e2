// Which endpoint a CNI sandbox interface is: eth0 feeds the pod's IPs; another interface
// (Multus net1, ...) is the secondary network its network-status entry or its CNI network
// name names, and feeds that entry of pod.networks; an unknown network is an error naming
// the sandbox, never a replacement of the pod's primary addresses.
import test from 'ava';
import { applySandboxes } from '../../src/agent/sandbox-networks';
import type { Sandbox } from '../../src/agent/sandboxes';
import type { NetworkAttachmentDefinitionObj } from '../../src/model/types';
import { pod, snapshot } from '../helpers/snapshot-builders';

const sb = (ifName: string, ips: string[], extra: Partial<Sandbox> = {}): Sandbox => ({
  pod: 'demo/web',
  containerId: 'c1',
  ifName,
  netns: '/run/netns/c1',
  ips,
  hostIf: { name: `veth-${ifName}`, ifindex: ifName === 'eth0' ? 7 : 8 },
  ...extra,
});

const nad = (namespace: string, name: string, configName = name): NetworkAttachmentDefinitionObj => ({
  namespace,
  name,
  config: JSON.stringify({ cniVersion: '1.0.0', name: configName, type: 'ptp' }),
});

const state = (nads: NetworkAttachmentDefinitionObj[], web = pod('demo', 'web', [])) => ({
  ...snapshot({ pods: [web] }),
  networkAttachmentDefinitions: nads,
});

test('eth0 feeds the pod IPs, net1 the secondary network named by its CNI network name; each its own host interface', (t) => {
  const {
    snapshot: s,
    cniInterfaces,
    endpoints,
  } = applySandboxes(state([nad('demo', 'blue'), nad('other', 'blue')]), [
    sb('eth0', ['10.244.7.2'], { network: 'routed' }),
    sb('net1', ['10.244.8.2'], { network: 'blue' }),
  ]);
  t.deepEqual(s.pods[0].ips, ['10.244.7.2']);
  t.deepEqual(
    s.pods[0].networks,
    [{ network: 'demo/blue', interface: 'net1', ips: ['10.244.8.2'] }],
    "the pod's namespace first",
  );
  t.deepEqual(
    [...cniInterfaces],
    [
      ['demo/web', { name: 'veth-eth0', ifindex: 7 }],
      ['demo/web network demo/blue', { name: 'veth-net1', ifindex: 8 }],
    ],
  );
  t.deepEqual(endpoints.get('demo/web net1'), { network: 'demo/blue' });
});

test("a NAD found by its config's name or as ns/name; the network-status entry of the interface wins and gets the newer IPs", (t) => {
  const byConfig = applySandboxes(state([nad('infra', 'storage-net', 'storage')]), [
    sb('net1', ['10.9.0.2'], { network: 'storage' }),
  ]);
  t.deepEqual(byConfig.endpoints.get('demo/web net1'), { network: 'infra/storage-net' });
  const qualified = applySandboxes(state([nad('infra', 'blue'), nad('demo', 'blue')]), [
    sb('net1', ['10.9.0.2'], { network: 'infra/blue' }),
  ]);
  t.deepEqual(qualified.endpoints.get('demo/web net1'), { network: 'infra/blue' });
  const web = {
    ...pod('demo', 'web', ['10.244.7.2']),
    networks: [{ network: 'demo/red', interface: 'net1', ips: ['10.9.0.1'] }],
  };
  const listed = applySandboxes(state([], web), [sb('net1', ['10.9.0.2'], { network: 'whatever' })]);
  t.deepEqual(listed.snapshot.pods[0].networks, [{ network: 'demo/red', interface: 'net1', ips: ['10.9.0.2'] }]);
  t.deepEqual(listed.snapshot.pods[0].ips, ['10.244.7.2'], 'the primary addresses untouched');
  const caughtUp = applySandboxes(state([], web), [sb('net1', ['10.9.0.1'])]);
  t.is(caughtUp.snapshot.pods[0], web, 'nothing to change when the source lists the addresses');
});

test('a secondary interface whose network is unknown or ambiguous is an error naming the sandbox; it feeds nothing', (t) => {
  const cases: [Sandbox, NetworkAttachmentDefinitionObj[], RegExp][] = [
    [
      sb('net1', ['10.9.0.2'], { network: 'blue' }),
      [],
      /^cni sandbox c1 of pod demo\/web on net1: network "blue": no NetworkAttachmentDefinition of that name/,
    ],
    [
      sb('net1', ['10.9.0.2'], { network: 'blue' }),
      [nad('a', 'blue'), nad('b', 'blue')],
      /network "blue" is ambiguous: a\/blue, b\/blue$/,
    ],
    [
      sb('net1', ['10.9.0.2']),
      [nad('demo', 'blue')],
      /on net1: a secondary interface whose CNI request names no network/,
    ],
  ];
  for (const [sandbox, nads, error] of cases) {
    const out = applySandboxes(state(nads), [sandbox]);
    const ep = out.endpoints.get('demo/web net1');
    t.regex(ep && 'error' in ep ? ep.error : '', error);
    t.deepEqual(out.snapshot.pods[0].ips, []);
    t.deepEqual(out.snapshot.pods[0].networks, []);
    t.is(out.cniInterfaces.size, 0);
  }
});
