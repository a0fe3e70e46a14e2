// Typed snapshot of the cluster state that matters for policy: what every source
// (directory, Kubernetes API) produces and what model/, reference/ and compile/ read.
// Objects here are already validated; raw YAML never travels past sources/.
import type { PolicyKind } from './registry';

export type Labels = Readonly<Record<string, string>>;

export interface ObjectRef {
  kind: string;
  namespace?: string;
  name: string;
}

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

/** Kubernetes LabelSelector; an empty selector ({}) selects everything. */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export type Protocol = 'TCP' | 'UDP' | 'SCTP';

export interface NamespaceObj {
  name: string;
  labels: Labels; // always includes kubernetes.io/metadata.name
}

export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol: Protocol;
}

export interface PodObj {
  namespace: string;
  name: string;
  labels: Labels;
  annotations: Readonly<Record<string, string>>;
  nodeName?: string;
  hostNetwork: boolean;
  ports: ContainerPort[];
  ips: string[]; // status.podIPs, canonical text form
  /** Secondary networks from k8s.v1.cni.cncf.io/network-status: "ns/nad" -> interface data. */
  networks: PodNetwork[];
}

export interface PodNetwork {
  network: string; // "namespace/name" of the NetworkAttachmentDefinition
  interface?: string;
  ips: string[];
  pciAddress?: string; // SR-IOV VF (device-info.pci.pci-address)
}

export interface NodeObj {
  name: string;
  labels: Labels;
  addresses: string[]; // InternalIP/ExternalIP addresses
}

export interface ServicePort {
  name?: string;
  port: number;
  targetPort: number | string;
  protocol: Protocol;
}

export interface ServiceObj {
  namespace: string;
  name: string;
  clusterIPs: string[];
  selector?: Record<string, string>;
  ports: ServicePort[];
}

export interface NetworkAttachmentDefinitionObj {
  namespace: string;
  name: string;
  config: string; // raw CNI config JSON
  vlan?: number;
}

/** Where a policy object came from, for error messages and trace output. */
export interface PolicyRef {
  kind: PolicyKind | 'System';
  namespace?: string;
  name: string;
}

export interface RedirectConfig {
  mode: 'fwmark' | 'direct';
  mark: number;
  table: number;
  uplink: string;
  gateway?: string;
  gateway6?: string;
  serviceCIDRs: string[];
}

/** Map capacities (max_entries), applied when the agent loads the datapath. */
export interface Capacity {
  /** nf_endpoints; nf_local_addrs holds twice as many addresses (dual stack). */
  endpoints: number;
  /** Peer addresses and prefixes with an identity: nf_ident_exact and nf_ident_lpm. */
  identities: number;
  /** {table, identity} entries: nf_peer_ident. */
  peerIdentities: number;
  /** {table, prefix} entries: nf_peer_cidr. */
  peerCidrs: number;
  /** {table, protocol, port prefix} entries: nf_ports. */
  ports: number;
  /** Rules of every table together: nf_rules and its counters nf_rule_stats. */
  rules: number;
  /** Tracked flows: nf_ct (LRU). */
  conntrack: number;
}

export interface NetfenceConfig {
  /** Host interface name patterns (glob: `eth*`, `ens160`). */
  hostInterfaces: string[];
  privileged: {
    enabled: boolean;
    established: boolean;
    loopback: boolean;
    apiServers: string[]; // "ip:port"
    kubeletPort: number;
    agentPorts: number[];
  };
  serviceCIDRs: string[];
  /** Same-node pod-to-pod traffic between host veths skips the node's stack
   *  (bpf_redirect_peer) once both pods' policies allowed it; off without the tunnel only. */
  localDelivery: boolean;
  redirect?: RedirectConfig;
  metricsAddress: string; // host:port
  eventsPerSecond: number;
  bpffsRoot: string;
  capacity: Capacity;
}

/** A rejected object: one per bad object, naming file, object and field. Also the part of
 *  a loaded object that fails closed (a ClusterNetworkPolicy rule with an unsupported peer):
 *  its key is then among the loaded objects (origins), so that version is enforced. */
export interface ValidationError {
  file?: string;
  line?: number; // 1-based line of the offending field (or of the document) in `file`
  object: string; // "Kind namespace/name"
  field: string; // JSON path, e.g. spec.ingress[0].from[1].ipBlock.cidr
  message: string;
  /** Identity of the rejected object (objectKey in snapshot.ts) when its kind and name
   *  could be read; absent for a document that cannot be identified (a YAML syntax error,
   *  a kind or apiVersion netfence does not read), which keeps what its file held. */
  key?: string;
}

export interface Snapshot {
  namespaces: NamespaceObj[];
  pods: PodObj[];
  nodes: NodeObj[];
  services: ServiceObj[];
  networkAttachmentDefinitions: NetworkAttachmentDefinitionObj[];
  /** Every policy kind, already normalized to rules (see rules.ts). */
  policies: import('./rules').Policy[];
  config: NetfenceConfig;
  errors: ValidationError[];
  warnings: string[];
  /** Every loaded object by identity (objectKey), with the file it came from: with the
   *  errors' keys, what lets a rejected object keep its last valid version (last-good.ts).
   *  A Map: 100k objects' keys make a plain object a slow dictionary. */
  origins?: Map<string, { file?: string }>;
}
