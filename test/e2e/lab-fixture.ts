// A small hand-made Snapshot for lab tests: 2 nodes, 4 pods (one hostNetwork), dual-stack,
// a ClusterIP service and a secondary network.
import { defaultCapacity } from '../../src/model/config';
import type { NetfenceConfig, PodObj, Snapshot } from '../../src/model/types';

export const LAB_CONFIG: NetfenceConfig = {
  hostInterfaces: ['eth0'],
  privileged: {
    enabled: false,
    established: true,
    loopback: true,
    apiServers: ['192.168.50.100:6443'],
    kubeletPort: 10250,
    agentPorts: [9402],
  },
  serviceCIDRs: ['10.96.0.0/16', 'fd00:96::/112'],
  localDelivery: true,
  metricsAddress: '127.0.0.1:9402',
  eventsPerSecond: 100,
  bpffsRoot: '/sys/fs/bpf/netfence',
  capacity: defaultCapacity(),
};

function pod(namespace: string, name: string, nodeName: string, ips: string[], extra: Partial<PodObj> = {}): PodObj {
  return {
    namespace,
    name,
    labels: { app: name },
    annotations: {},
    nodeName,
    hostNetwork: false,
    ports: [
      { name: 'http', containerPort: 80, protocol: 'TCP' },
      { containerPort: 81, protocol: 'UDP' },
    ],
    ips,
    networks: [],
    ...extra,
  };
}

export function labSnapshot(): Snapshot {
  return {
    namespaces: ['x', 'y'].map((n) => ({ name: n, labels: { 'kubernetes.io/metadata.name': n } })),
    nodes: [
      { name: 'n1', labels: {}, addresses: ['192.168.50.11', 'fd00:50::11'] },
      { name: 'n2', labels: {}, addresses: ['192.168.50.12', 'fd00:50::12'] },
    ],
    pods: [
      pod('x', 'a', 'n1', ['10.244.1.10', 'fd00:244:1::10'], {
        networks: [{ network: 'x/sec', interface: 'net1', ips: ['10.10.0.10'] }],
      }),
      pod('x', 'b', 'n1', ['10.244.1.11', 'fd00:244:1::11']),
      pod('y', 'c', 'n2', ['10.244.2.10', 'fd00:244:2::10'], {
        networks: [{ network: 'x/sec', interface: 'net1', ips: ['10.10.0.20'] }],
      }),
      pod('y', 'h', 'n2', [], { hostNetwork: true }),
    ],
    services: [
      {
        namespace: 'x',
        name: 'web',
        clusterIPs: ['10.96.0.10'],
        selector: { app: 'b' },
        ports: [{ port: 8080, targetPort: 'http', protocol: 'TCP' }],
      },
    ],
    networkAttachmentDefinitions: [{ namespace: 'x', name: 'sec', config: '{"cniVersion":"0.3.1","type":"sriov"}' }],
    policies: [],
    config: LAB_CONFIG,
    errors: [],
    warnings: [],
  };
}
