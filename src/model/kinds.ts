// What a document of a kind netfence has no parser for means. In a group netfence reads,
// or under a kind netfence reads at another apiVersion, it may well be a policy netfence
// cannot see (`kind: NetworkPolicyy`, `networking.k8s.io/v2`): dropping it silently would
// open what it denies, so it is an error (the snapshot then keeps the file's last valid
// objects). The kinds of those groups that carry nothing netfence enforces (ConfigMap,
// Ingress, Antrea's own pod policies), and every kind of the other groups (Deployment),
// are ordinary manifest content: a warning.

/** Kinds of the groups netfence reads that carry nothing it enforces ('' = core). */
const OTHER_KINDS: Readonly<Record<string, readonly string[]>> = {
  '': [
    'Binding',
    'ComponentStatus',
    'ConfigMap',
    'Endpoints',
    'Event',
    'LimitRange',
    'PersistentVolume',
    'PersistentVolumeClaim',
    'PodTemplate',
    'ReplicationController',
    'ResourceQuota',
    'Secret',
    'ServiceAccount',
  ],
  'networking.k8s.io': ['Ingress', 'IngressClass', 'IPAddress', 'ServiceCIDR'],
  'policy.networking.k8s.io': [],
  'k8s.cni.cncf.io': ['IPAMClaim'],
  // Antrea enforces its pod policies itself; netfence reads only its node policies.
  'crd.antrea.io': [
    'AntreaAgentInfo',
    'AntreaControllerInfo',
    'BGPPolicy',
    'ClusterGroup',
    'Egress',
    'ExternalEntity',
    'ExternalIPPool',
    'ExternalNode',
    'Group',
    'IPPool',
    'NetworkPolicy',
    'NodeLatencyMonitor',
    'PacketCapture',
    'SupportBundleCollection',
    'Tier',
    'Traceflow',
    'TrafficControl',
  ],
  'netfence.io': [],
};

export type Unhandled = { error: string; field: 'apiVersion' | 'kind' } | { warning: string };

/** The API group of an apiVersion ('' = core). */
export function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

/** `read`: every "apiVersion/kind" netfence parses. */
export function unhandledKind(apiVersion: string, kind: string, read: readonly string[]): Unhandled {
  const group = groupOf(apiVersion);
  const others = OTHER_KINDS[group];
  if (others?.includes(kind)) return { warning: `netfence does not read ${kind} (${apiVersion})` };
  const parsed = read.map((r) => ({
    apiVersion: r.slice(0, r.lastIndexOf('/')),
    kind: r.slice(r.lastIndexOf('/') + 1),
  }));
  const versions = parsed.filter((r) => r.kind === kind).map((r) => r.apiVersion);
  if (versions.length) {
    return {
      field: 'apiVersion',
      error: `netfence does not read ${kind} at apiVersion ${apiVersion}, only at ${versions.join(', ')}`,
    };
  }
  if (others) {
    const there = parsed.filter((r) => groupOf(r.apiVersion) === group).map((r) => `${r.apiVersion} ${r.kind}`);
    return {
      field: 'kind',
      error: `unknown kind "${kind}" in ${group || 'the core group'} (netfence reads ${there.join(', ')} there)`,
    };
  }
  return { warning: `netfence does not read ${kind} (${apiVersion})` };
}
