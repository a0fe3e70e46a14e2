// Validation of the non-policy objects (Namespace, Pod, Node, Service,
// NetworkAttachmentDefinition) into typed snapshot objects. These kinds carry many
// fields netfence never reads (images, resources, conditions), so only the fields read
// here are checked; policy kinds are strict about unknown fields instead.
import { Field } from './field';
import type {
  ContainerPort,
  NamespaceObj,
  NetworkAttachmentDefinitionObj,
  NodeObj,
  PodNetwork,
  PodObj,
  Protocol,
  ServiceObj,
  ServicePort,
} from './types';

export const PROTOCOLS: readonly Protocol[] = ['TCP', 'UDP', 'SCTP'];
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';
export const NETWORK_STATUS_ANNOTATION = 'k8s.v1.cni.cncf.io/network-status';

export interface Meta {
  name: string;
  namespace?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

/** metadata of an object; namespaced objects default to namespace "default" like kubectl. */
export function readMeta(doc: Field, namespaced: boolean): Meta {
  const m = doc.get('metadata');
  m.object();
  return {
    name: m.get('name').ownString(),
    namespace: namespaced ? (m.get('namespace').optString() ?? 'default') : undefined,
    labels: m.get('labels').stringMap(),
    annotations: m.get('annotations').stringMap(),
  };
}

export function parseNamespace(_doc: Field, meta: Meta): NamespaceObj {
  return { name: meta.name, labels: { ...meta.labels, [NAMESPACE_NAME_LABEL]: meta.name } };
}

function containerPorts(spec: Field): ContainerPort[] {
  return spec
    .get('containers')
    .items()
    .flatMap((c) =>
      c
        .get('ports')
        .items()
        .map((p): ContainerPort => {
          const name = p.get('name').optString();
          const containerPort = p.get('containerPort').int(1, 65535);
          const protocol = p.get('protocol').oneOf(PROTOCOLS, 'TCP');
          // Two literals, not a spread: one port per pod of 100k.
          return name !== undefined ? { name, containerPort, protocol } : { containerPort, protocol };
        }),
    );
}

function podIps(status: Field): string[] {
  const list = status
    .get('podIPs')
    .items()
    .map((e) => e.get('ip').ip());
  const single = status.get('podIP');
  if (list.length === 0 && single.optString() !== undefined) list.push(single.ip());
  return [...new Set(list)];
}

/** Secondary networks from Multus' network-status annotation (the default network is skipped). */
function podNetworks(meta: Meta, podNamespace: string): PodNetwork[] {
  const text = meta.annotations[NETWORK_STATUS_ANNOTATION];
  if (text === undefined) return [];
  const base = new Field(text, ['metadata', 'annotations', NETWORK_STATUS_ANNOTATION]);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    base.fail(`invalid JSON: ${(e as Error).message}`);
  }
  return new Field(parsed, base.segments)
    .items()
    .filter((e) => !e.get('default').bool(false))
    .map((e): PodNetwork => {
      const name = e.get('name').string();
      const iface = e.get('interface').optString();
      const pci = e.get('device-info').get('pci').get('pci-address').optString();
      return {
        network: name.includes('/') ? name : `${podNamespace}/${name}`,
        ...(iface !== undefined && { interface: iface }),
        ips: e
          .get('ips')
          .items()
          .map((ip) => ip.ip()),
        ...(pci !== undefined && { pciAddress: pci }),
      };
    });
}

export function parsePod(doc: Field, meta: Meta): PodObj {
  const spec = doc.get('spec');
  const namespace = meta.namespace ?? 'default';
  const nodeName = spec.get('nodeName').optString();
  return {
    namespace,
    name: meta.name,
    labels: meta.labels,
    annotations: meta.annotations,
    ...(nodeName !== undefined && { nodeName }),
    hostNetwork: spec.get('hostNetwork').bool(false),
    ports: containerPorts(spec),
    ips: podIps(doc.get('status')),
    networks: podNetworks(meta, namespace),
  };
}

const NODE_ADDRESS_TYPES = ['InternalIP', 'ExternalIP'];

export function parseNode(doc: Field, meta: Meta): NodeObj {
  const addrs = doc
    .get('status')
    .get('addresses')
    .items()
    .filter((a) => NODE_ADDRESS_TYPES.includes(a.get('type').string()))
    .map((a) => a.get('address').ip());
  return { name: meta.name, labels: meta.labels, addresses: [...new Set(addrs)] };
}

export function parseService(doc: Field, meta: Meta): ServiceObj {
  const spec = doc.get('spec');
  const ipFields = spec.get('clusterIPs').present ? spec.get('clusterIPs').items() : [spec.get('clusterIP')];
  // "None" marks a headless Service: no virtual IP to match.
  const clusterIPs = ipFields.filter((f) => f.present && f.value !== 'None' && f.value !== '').map((f) => f.ip());
  const sel = spec.get('selector');
  const ports = spec
    .get('ports')
    .items()
    .map((p): ServicePort => {
      const name = p.get('name').optString();
      const port = p.get('port').int(1, 65535);
      const tp = p.get('targetPort');
      // SetDefaults_Service: an absent, 0 or "" targetPort is the port itself.
      const sameAsPort = !tp.present || tp.value === 0 || tp.value === '';
      return {
        ...(name !== undefined && { name }),
        port,
        targetPort: sameAsPort ? port : typeof tp.value === 'string' ? tp.string() : tp.int(1, 65535),
        protocol: p.get('protocol').oneOf(PROTOCOLS, 'TCP'),
      };
    });
  return {
    namespace: meta.namespace ?? 'default',
    name: meta.name,
    clusterIPs: [...new Set(clusterIPs)],
    ...(sel.present && { selector: sel.stringMap() }),
    ports,
  };
}

/** The CNI config is JSON in a string; `vlan` may sit at the top or in a conflist plugin. */
export function parseNetworkAttachmentDefinition(doc: Field, meta: Meta): NetworkAttachmentDefinitionObj {
  const cf = doc.get('spec').get('config');
  const config = cf.present ? cf.string() : '';
  const out: NetworkAttachmentDefinitionObj = { namespace: meta.namespace ?? 'default', name: meta.name, config };
  if (!config) return out;
  let parsed: unknown;
  try {
    parsed = JSON.parse(config);
  } catch (e) {
    cf.fail(`invalid CNI config JSON: ${(e as Error).message}`);
  }
  const root = new Field(parsed, cf.segments);
  root.object();
  const carrier = [root, ...root.get('plugins').items()].find((f) => f.get('vlan').present);
  if (carrier) out.vlan = carrier.get('vlan').int(0, 4094);
  return out;
}
