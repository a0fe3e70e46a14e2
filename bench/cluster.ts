// A synthetic cluster for the control-plane benchmark: namespaces, pods spread over
// nodes, and a mix of NetworkPolicies (pod and namespace selectors, named and numbered
// ports), admin/baseline ClusterNetworkPolicies and ipBlock policies. Deterministic.
import type { Policy, Rule } from '../src/model/rules';
import { defaultCapacity } from '../src/model/config';
import type { NetfenceConfig, NamespaceObj, NodeObj, PodObj, Snapshot } from '../src/model/types';
import type { DiscoveredEndpoint } from '../src/compile/endpoint';
import { prng } from './stats';

export interface ClusterSpec {
  pods: number;
  namespaces: number;
  policies: number;
  nodes: number;
  seed?: number;
}

export const BIG_CLUSTER: ClusterSpec = { pods: 10000, namespaces: 1000, policies: 2000, nodes: 50 };
export const SMALL_CLUSTER: ClusterSpec = { pods: 1000, namespaces: 100, policies: 200, nodes: 5 };
/** The node whose maps are compiled. */
export const BENCH_NODE = 'node-0';

const APPS = ['web', 'api', 'db', 'cache', 'worker'];
const TEAMS = 20;
const ENVS = ['prod', 'staging', 'dev'];

export const CONFIG: NetfenceConfig = {
  hostInterfaces: [],
  privileged: {
    enabled: false,
    established: false,
    loopback: false,
    apiServers: [],
    kubeletPort: 10250,
    agentPorts: [],
  },
  serviceCIDRs: ['10.96.0.0/12'],
  localDelivery: true,
  metricsAddress: '127.0.0.1:0',
  eventsPerSecond: 0,
  bpffsRoot: '/sys/fs/bpf/netfence',
  capacity: defaultCapacity(),
};

function nsName(i: number): string {
  return `ns-${i}`;
}

function podIp(k: number): string {
  return `10.${128 + (k >>> 16)}.${(k >>> 8) & 255}.${k & 255}`;
}

export function makePod(k: number, namespaces: number, nodes: number): PodObj {
  const ns = nsName(k % namespaces);
  const app = APPS[Math.floor(k / namespaces) % APPS.length];
  return {
    namespace: ns,
    name: `pod-${k}`,
    labels: { app, tier: app === 'db' || app === 'cache' ? 'data' : 'front' },
    annotations: {},
    nodeName: `node-${k % nodes}`,
    hostNetwork: false,
    ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
    ips: [podIp(k)],
    networks: [],
  };
}

function networkPolicy(i: number, ns: string, rand: () => number): Policy {
  const app = APPS[i % APPS.length];
  const from = APPS[(i + 1) % APPS.length];
  const rules: Rule[] = [
    {
      direction: 'ingress',
      action: 'allow',
      peers: [{ kind: 'pods', namespace: ns, podSelector: { matchLabels: { app: from } } }],
      ports: [rand() < 0.5 ? { protocol: 'TCP', name: 'http' } : { protocol: 'TCP', port: 8080 }],
      index: 0,
    },
    {
      direction: 'ingress',
      action: 'allow',
      peers: [
        {
          kind: 'pods',
          namespaceSelector: { matchLabels: { team: `team-${Math.floor(rand() * TEAMS)}` } },
          podSelector: {},
        },
      ],
      ports: [{ protocol: 'TCP', port: 9000, endPort: 9100 }],
      index: 1,
    },
  ];
  const egress = rand() < 0.5;
  if (egress) {
    rules.push({
      direction: 'egress',
      action: 'allow',
      peers: [
        {
          kind: 'pods',
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ns-0' } },
          podSelector: { matchLabels: { app: 'db' } },
        },
      ],
      ports: [
        { protocol: 'UDP', port: 53 },
        { protocol: 'TCP', port: 5432 },
      ],
      index: 0,
    });
  }
  return {
    ref: { kind: 'NetworkPolicy', namespace: ns, name: `np-${i}` },
    tier: 'netpol',
    priority: 0,
    subject: { kind: 'pods', namespace: ns, podSelector: { matchLabels: { app } } },
    isolates: egress ? ['ingress', 'egress'] : ['ingress'],
    rules,
  };
}

function ipBlockPolicy(i: number, ns: string, rand: () => number): Policy {
  const cidrs = Array.from(
    { length: 5 + Math.floor(rand() * 16) },
    () => `172.${16 + Math.floor(rand() * 16)}.${Math.floor(rand() * 256)}.0/24`,
  );
  return {
    ref: { kind: 'NetworkPolicy', namespace: ns, name: `ipblock-${i}` },
    tier: 'netpol',
    priority: 0,
    subject: { kind: 'pods', namespace: ns, podSelector: { matchLabels: { app: APPS[i % APPS.length] } } },
    isolates: ['ingress', 'egress'],
    rules: [
      {
        direction: 'ingress',
        action: 'allow',
        peers: cidrs.map((cidr) => ({ kind: 'cidr' as const, cidr, except: [] })),
        ports: [{ protocol: 'TCP', port: 443 }],
        index: 0,
      },
      {
        direction: 'egress',
        action: 'allow',
        peers: [{ kind: 'cidr', cidr: '0.0.0.0/0', except: ['10.0.0.0/8', '192.168.0.0/16'] }],
        ports: null,
        index: 0,
      },
    ],
  };
}

function clusterPolicy(i: number, rand: () => number): Policy {
  const admin = i % 3 !== 2;
  const env = ENVS[i % ENVS.length];
  const action = admin ? (['deny', 'allow', 'pass'] as const)[i % 3] : 'deny';
  return {
    ref: { kind: 'ClusterNetworkPolicy', name: `cnp-${i}` },
    tier: admin ? 'admin' : 'baseline',
    priority: i % 100,
    subject: {
      kind: 'pods',
      namespaceSelector: { matchLabels: { env } },
      podSelector: { matchLabels: { app: APPS[i % APPS.length] } },
    },
    isolates: [],
    rules: [
      {
        direction: 'ingress',
        action,
        peers: [{ kind: 'pods', namespaceSelector: { matchLabels: { team: `team-${Math.floor(rand() * TEAMS)}` } } }],
        ports: [{ protocol: 'TCP', port: 1000 + (i % 50) }],
        index: 0,
        name: `r${i}`,
      },
    ],
  };
}

export function makeCluster(spec: ClusterSpec): Snapshot {
  const rand = prng(spec.seed ?? 42);
  const namespaces: NamespaceObj[] = Array.from({ length: spec.namespaces }, (_, i) => ({
    name: nsName(i),
    labels: { 'kubernetes.io/metadata.name': nsName(i), team: `team-${i % TEAMS}`, env: ENVS[i % ENVS.length] },
  }));
  const nodes: NodeObj[] = Array.from({ length: spec.nodes }, (_, i) => ({
    name: `node-${i}`,
    labels: { 'kubernetes.io/hostname': `node-${i}`, zone: `zone-${i % 3}` },
    addresses: [`192.168.${(i + 1) >>> 8}.${(i + 1) & 255}`],
  }));
  const pods = Array.from({ length: spec.pods }, (_, k) => makePod(k, spec.namespaces, spec.nodes));
  // 80% NetworkPolicy, 15% ClusterNetworkPolicy, 5% ipBlock policies.
  const policies: Policy[] = [];
  for (let i = 0; i < spec.policies; i++) {
    const ns = nsName(i % spec.namespaces);
    const kind = i % 20;
    if (kind < 16) policies.push(networkPolicy(i, ns, rand));
    else if (kind < 19) policies.push(clusterPolicy(i, rand));
    else policies.push(ipBlockPolicy(i, ns, rand));
  }
  return {
    namespaces,
    pods,
    nodes,
    services: [],
    networkAttachmentDefinitions: [],
    policies,
    config: CONFIG,
    errors: [],
    warnings: [],
  };
}

/** Host veths of the pods on `node` (ifindex = 1000 + pod number). */
export function localEndpoints(s: Snapshot, node: string): DiscoveredEndpoint[] {
  return s.pods
    .filter((p) => p.nodeName === node)
    .map((p) => {
      const k = Number(p.name.slice('pod-'.length));
      return { ifname: `veth${k}`, ifindex: 1000 + k, kind: 'pod' as const, pod: `${p.namespace}/${p.name}` };
    });
}
