// A large state directory as kubectl would write it (block-style YAML, one file per
// namespace): the Namespace, its pods spread over the nodes, and its NetworkPolicies,
// each with a pod selector, a pod/namespace peer, an ipBlock with an exception and ports.
// 200 namespaces x 100 policies is the 20k-policy directory of the apply benchmark (5.7 MB);
// 10k namespaces x 10 pods x 2 policies (+ cluster policies) the 100k-pod one of the scale
// benchmark. Deterministic; each policy selects one of APPS apps, so no endpoint's table gets
// large. Policies vary with their number in the whole directory (n), not in the namespace.
import fs from 'node:fs';
import path from 'node:path';

export interface StateDirSpec {
  namespaces: number;
  policiesPerNamespace: number;
  podsPerNamespace: number;
  nodes: number;
  /** ClusterNetworkPolicies in cluster.yaml (scale benchmark): see clusterPolicyYaml. */
  clusterPolicies?: number;
  /** capacity.identities of a netfence.yaml (the default holds 64k pod addresses). */
  identities?: number;
}

export const BIG_STATE_DIR: StateDirSpec = {
  namespaces: 200,
  policiesPerNamespace: 100,
  podsPerNamespace: 10,
  nodes: 50,
};
export const SMALL_STATE_DIR: StateDirSpec = {
  namespaces: 20,
  policiesPerNamespace: 100,
  podsPerNamespace: 10,
  nodes: 5,
};

const APPS = 20;

function namespaceYaml(ns: number): string {
  return `apiVersion: v1
kind: Namespace
metadata:
  name: ns-${ns}
  labels:
    team: team-${ns % 10}
    kubernetes.io/metadata.name: ns-${ns}
`;
}

function podYaml(ns: number, i: number, spec: StateDirSpec): string {
  const k = ns * spec.podsPerNamespace + i;
  return `apiVersion: v1
kind: Pod
metadata:
  name: pod-${k}
  namespace: ns-${ns}
  labels:
    app: app-${k % APPS}
    role: role-${i % 4}
spec:
  nodeName: node-${k % spec.nodes}
  containers:
    - name: main
      image: example/app:1.0
      ports:
        - name: http
          containerPort: 8080
          protocol: TCP
status:
  podIPs:
    - ip: 10.${64 + (k >> 16)}.${(k >> 8) & 255}.${k & 255}
`;
}

function policyYaml(ns: number, i: number): string {
  const n = ns * 1000 + i;
  const ingress = `  ingress:
    - from: [{ podSelector: { matchLabels: { role: role-${n % 4} } } }, { ipBlock: { cidr: 172.${16 + ((n >> 16) & 15)}.${(n >> 8) & 255}.${n & 255}/32 } }]
      ports: [{ protocol: TCP, port: ${8000 + (n % 50)} }]
`;
  // One policy in four restricts egress too: to a team's namespaces and a /24 but its upper half.
  const egress =
    n % 4 !== 3
      ? ''
      : `  egress:
    - to: [{ namespaceSelector: { matchLabels: { team: team-${n % 10} } } }, { ipBlock: { cidr: 100.${64 + (n >> 16)}.${(n >> 8) & 255}.0/24, except: [100.${64 + (n >> 16)}.${(n >> 8) & 255}.128/25] } }]
      ports: [{ protocol: UDP, port: 53 }, { protocol: TCP, port: 443 }]
`;
  return `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: np-${i}, namespace: ns-${ns} }
spec:
  podSelector: { matchLabels: { app: app-${n % APPS} } }
  policyTypes: [Ingress${egress ? ', Egress' : ''}]
${ingress}${egress}`;
}

/** One pod in each namespace of team t (pod i = t there has app-t in an even namespace,
 *  app-(10 + t) in an odd one; a team's namespaces are all even or all odd): 1 in 100 pods of
 *  the directory, denied ingress from one namespace (ns-(t + 1)) on one port. */
function clusterPolicyYaml(t: number): string {
  return `apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: { name: cnp-${t} }
spec:
  tier: Admin
  priority: ${t}
  subject:
    pods:
      namespaceSelector: { matchLabels: { team: team-${t} } }
      podSelector: { matchLabels: { app: app-${(t % 2) * 10 + t} } }
  ingress:
    - name: deny-ns-${t + 1}
      action: Deny
      from: [{ namespaces: { matchLabels: { kubernetes.io/metadata.name: ns-${t + 1} } } }]
      protocols: [{ tcp: { destinationPort: { number: ${9000 + t} } } }]
`;
}

function nodeYaml(i: number): string {
  return `apiVersion: v1
kind: Node
metadata:
  name: node-${i}
status:
  addresses:
    - type: InternalIP
      address: 192.168.${i >> 8}.${i & 255}
`;
}

/** Writes the directory (which must not exist yet); returns its size in bytes. */
export function writeStateDir(dir: string, spec: StateDirSpec): number {
  fs.mkdirSync(dir, { recursive: false });
  let bytes = 0;
  const write = (name: string, docs: string[]): void => {
    const text = docs.join('---\n');
    fs.writeFileSync(path.join(dir, name), text);
    bytes += Buffer.byteLength(text);
  };
  write(
    'nodes.yaml',
    Array.from({ length: spec.nodes }, (_, i) => nodeYaml(i)),
  );
  if (spec.identities)
    write('netfence.yaml', [
      `apiVersion: netfence.io/v1alpha1\nkind: NetfenceConfig\nmetadata: { name: netfence }\ncapacity: { identities: ${spec.identities} }\n`,
    ]);
  if (spec.clusterPolicies)
    write(
      'cluster.yaml',
      Array.from({ length: spec.clusterPolicies }, (_, t) => clusterPolicyYaml(t)),
    );
  for (let ns = 0; ns < spec.namespaces; ns++) {
    write(`ns-${String(ns).padStart(4, '0')}.yaml`, [
      namespaceYaml(ns),
      ...Array.from({ length: spec.podsPerNamespace }, (_, i) => podYaml(ns, i, spec)),
      ...Array.from({ length: spec.policiesPerNamespace }, (_, i) => policyYaml(ns, i)),
    ]);
  }
  return bytes;
}
