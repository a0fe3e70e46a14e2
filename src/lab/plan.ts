// Lab topology planning: Snapshot -> the namespaces, links, addresses, routes and iptables
// rules that emulate the cluster on this machine. Pure (no I/O): every command is an argv
// array, so tests read the plan and `up` just runs it in order.
import { createHash } from 'node:crypto';
import { isIPv6 } from 'node:net';
import type { PodObj, Protocol, ServiceObj, Snapshot } from '../model/types';

/** One command of the plan; `netns` is recorded in the state file before it runs. */
export interface Op {
  argv: string[];
  netns?: string;
}

export interface LabPort {
  port: number;
  protocol: Protocol;
}

export interface NodePlan {
  name: string;
  netns: string;
  /** Uplink host side in the fabric netns (the node side is `eth0`). */
  fabricIf: string;
  addresses: string[];
}

export interface SecondaryPlan {
  network: string; // "ns/nad"
  podIf: string; // inside the pod netns
  hostIf: string; // in the node netns: stands in for a VF representor
  ips: string[];
  /** VLAN networks: the bridge in the node netns that hostIf is a port of (see vlanSwitchOps). */
  bridge?: string;
}

export interface PodPlan {
  key: string; // "ns/pod"
  node: string;
  /** The pod's own netns, or its node's netns for hostNetwork pods. */
  netns: string;
  hostNetwork: boolean;
  /** Host side of the pod veth in the node netns (absent for hostNetwork pods). */
  hostIf?: string;
  ips: string[];
  secondary: SecondaryPlan[];
}

export interface ServerPlan {
  netns: string;
  label: string;
  ports: LabPort[];
}

export interface LabPlan {
  name: string;
  fabricNetns: string;
  gateway4: string;
  gateway6: string;
  nodes: NodePlan[];
  pods: PodPlan[];
  /** API-server emulation in the fabric: "ip:port" entries from config.privileged.apiServers. */
  apiServers: { ip: string; port: number }[];
  services: { key: string; clusterIPs: string[] }[];
  /** Ports every pod and node server listens on. */
  ports: LabPort[];
  servers: ServerPlan[];
  ops: Op[];
}

export interface PlanOptions {
  /** Namespace and lab name prefix (default "nf-"). */
  prefix?: string;
  /** Identity of the lab, usually the absolute state directory path. */
  id: string;
}

/** Pods' default gateway: answered by proxy ARP on the host veth (Calico style). */
export const POD_GATEWAY4 = '169.254.1.1';
export const POD_GATEWAY6 = 'fe80::1';
/** Node-side link-local address of the uplink: fabric routes v6 pod traffic through it. */
const NODE_LINKLOCAL6 = 'fe80::2';

export function shortHash(text: string, len = 8): string {
  return createHash('sha256').update(text).digest('hex').slice(0, len);
}

export function labName(id: string, prefix = 'nf-'): string {
  return `${prefix}${shortHash(id)}`;
}

/** Deterministic host-side veth name of a pod (<= 15 characters). */
export function podHostIf(podKey: string): string {
  return `nf${shortHash(podKey, 11)}`;
}

export function secondaryHostIf(podKey: string, network: string): string {
  return `nr${shortHash(`${podKey}#${network}`, 11)}`;
}

/** The embedded-switch bridge of a VLAN network, same name in every node netns and the fabric. */
export function vlanBridge(network: string): string {
  return `nb${shortHash(network, 11)}`;
}

/** The veth pair joining a node's bridge of a VLAN network to the fabric's (both ends). */
function vlanUplink(node: string, network: string): string {
  return `nu${shortHash(`${node}#${network}`, 11)}`;
}

/** Netns names may only carry characters safe in a path component. */
function nsPart(text: string): string {
  return text.replace(/[^A-Za-z0-9_.-]/g, '_');
}

const inNs = (netns: string, argv: string[]): string[] => ['ip', 'netns', 'exec', netns, ...argv];
const sysctl = (netns: string, ...kv: string[]): Op => ({ argv: inNs(netns, ['sysctl', '-q', '-w', ...kv]) });
const ipn = (netns: string, ...args: string[]): Op => ({ argv: ['ip', '-n', netns, ...args] });

/** Ports every lab server listens on: the union of all container ports (SCTP excluded: no kernel support). */
export function labPorts(snapshot: Snapshot): LabPort[] {
  const seen = new Map<string, LabPort>();
  for (const pod of snapshot.pods) {
    for (const p of pod.ports) {
      if (p.protocol === 'SCTP') continue;
      seen.set(`${p.containerPort}/${p.protocol}`, { port: p.containerPort, protocol: p.protocol });
    }
  }
  return [...seen.values()].sort((a, b) => a.port - b.port || a.protocol.localeCompare(b.protocol));
}

function familyAddr(ip: string): string {
  return isIPv6(ip) ? `${ip}/128` : `${ip}/32`;
}

function parseApiServer(entry: string): { ip: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(entry);
  if (!m) throw new Error(`plan lab: config.privileged.apiServers entry "${entry}": expected ip:port`);
  return { ip: m[1], port: Number(m[2]) };
}

export function planLab(snapshot: Snapshot, opts: PlanOptions): LabPlan {
  const prefix = opts.prefix ?? 'nf-';
  const name = labName(opts.id, prefix);
  const fabricNetns = `${name}-fabric`;
  const redirect = snapshot.config.redirect;
  const gateway4 = redirect?.gateway ?? '169.254.0.1';
  const gateway6 = redirect?.gateway6 ?? POD_GATEWAY6;
  const ports = labPorts(snapshot);
  const ops: Op[] = [];

  const nodes: NodePlan[] = snapshot.nodes.map((n) => {
    if (n.addresses.length === 0) throw new Error(`plan node ${n.name}: status.addresses is empty`);
    return {
      name: n.name,
      netns: `${name}-n-${nsPart(n.name)}`,
      fabricIf: `nfn${shortHash(n.name, 10)}`,
      addresses: n.addresses,
    };
  });
  const nodeByName = new Map(nodes.map((n) => [n.name, n]));
  const vlanNetworks = new Set(
    snapshot.networkAttachmentDefinitions.filter((n) => n.vlan !== undefined).map((n) => `${n.namespace}/${n.name}`),
  );
  const pods = snapshot.pods.map((p) => planPod(p, name, nodeByName, vlanNetworks));

  // Fabric: the underlay router and the external firewall that counts what passes.
  ops.push({ argv: ['ip', 'netns', 'add', fabricNetns], netns: fabricNetns });
  ops.push(...baseSysctls(fabricNetns));
  ops.push(sysctl(fabricNetns, 'net.ipv4.conf.all.send_redirects=0', 'net.ipv4.conf.default.send_redirects=0'));
  ops.push(ipn(fabricNetns, 'link', 'set', 'lo', 'up'));
  const fw = (...args: string[]): Op => ({ argv: inNs(fabricNetns, ['iptables', '-w', ...args]) });
  const fw6 = (...args: string[]): Op => ({ argv: inNs(fabricNetns, ['ip6tables', '-w', ...args]) });
  for (const f of [fw, fw6]) ops.push(f('-N', 'NF-COUNT'), f('-A', 'FORWARD', '-j', 'NF-COUNT'));

  for (const node of nodes) {
    ops.push({ argv: ['ip', 'netns', 'add', node.netns], netns: node.netns });
    ops.push(...baseSysctls(node.netns));
    ops.push(sysctl(node.netns, 'net.ipv4.conf.all.accept_redirects=0', 'net.ipv6.conf.all.accept_redirects=0'));
    ops.push(ipn(node.netns, 'link', 'set', 'lo', 'up'));
    ops.push(
      ipn(fabricNetns, 'link', 'add', node.fabricIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', node.netns),
    );
    ops.push(ipn(fabricNetns, 'addr', 'add', `${gateway4}/32`, 'dev', node.fabricIf));
    ops.push(
      ipn(
        fabricNetns,
        'addr',
        'add',
        `${gateway6}/${gateway6.startsWith('fe80:') ? 64 : 128}`,
        'dev',
        node.fabricIf,
        'nodad',
      ),
    );
    ops.push(ipn(fabricNetns, 'link', 'set', node.fabricIf, 'up'));
    ops.push(ipn(node.netns, 'addr', 'add', `${NODE_LINKLOCAL6}/64`, 'dev', 'eth0', 'nodad'));
    for (const a of node.addresses)
      ops.push(ipn(node.netns, 'addr', 'add', familyAddr(a), 'dev', 'eth0', ...(isIPv6(a) ? ['nodad'] : [])));
    ops.push(ipn(node.netns, 'link', 'set', 'eth0', 'up'));
    ops.push(ipn(node.netns, 'route', 'add', `${gateway4}/32`, 'dev', 'eth0', 'scope', 'link'));
    ops.push(ipn(node.netns, 'route', 'add', 'default', 'via', gateway4, 'dev', 'eth0'));
    if (!gateway6.startsWith('fe80:'))
      ops.push(ipn(node.netns, '-6', 'route', 'add', `${gateway6}/128`, 'dev', 'eth0'));
    ops.push(ipn(node.netns, '-6', 'route', 'add', 'default', 'via', gateway6, 'dev', 'eth0'));
    for (const a of node.addresses) ops.push(fabricRoute(fabricNetns, a, node));
    // Counters: a packet in and out of the same node link is a hairpin (the tunnel),
    // any other in/out pair is node-to-node.
    for (const other of nodes) {
      const comment = other === node ? `hairpin:${node.name}` : `cross:${node.name}>${other.name}`;
      for (const f of [fw, fw6])
        ops.push(f('-A', 'NF-COUNT', '-i', node.fabricIf, '-o', other.fabricIf, '-m', 'comment', '--comment', comment));
    }
  }

  const secondaryIps = new Map<string, string[]>();
  for (const s of pods.flatMap((p) => p.secondary))
    secondaryIps.set(s.network, [...(secondaryIps.get(s.network) ?? []), ...s.ips]);
  ops.push(...vlanSwitchOps(fabricNetns, pods, nodeByName));
  for (const pod of pods) {
    const node = nodeByName.get(pod.node)!;
    if (!pod.hostNetwork) ops.push(...podOps(pod, node, secondaryIps));
    // VLAN networks are layer 2 end to end: nothing to route in the fabric.
    const routed = pod.secondary.filter((s) => !s.bridge).flatMap((s) => s.ips);
    for (const ip of [...(pod.hostNetwork ? [] : pod.ips), ...routed]) ops.push(fabricRoute(fabricNetns, ip, node));
  }
  for (const svc of snapshot.services) ops.push(...serviceOps(svc, snapshot, nodes, pods));

  const apiServers = snapshot.config.privileged.apiServers.map(parseApiServer);
  const ownFabric = new Set([gateway4, gateway6]);
  for (const ip of new Set(apiServers.map((a) => a.ip))) {
    if (!ownFabric.has(ip))
      ops.push(ipn(fabricNetns, 'addr', 'add', familyAddr(ip), 'dev', 'lo', ...(isIPv6(ip) ? ['nodad'] : [])));
  }

  const servers: ServerPlan[] = [];
  for (const pod of pods) {
    if (!pod.hostNetwork) servers.push({ netns: pod.netns, label: pod.key, ports });
  }
  for (const node of nodes) servers.push({ netns: node.netns, label: `node/${node.name}`, ports });
  if (apiServers.length > 0) {
    const apiPorts = [...new Set(apiServers.map((a) => a.port))].map((port): LabPort => ({ port, protocol: 'TCP' }));
    servers.push({ netns: fabricNetns, label: 'fabric', ports: apiPorts });
  }
  const services = snapshot.services.map((s) => ({ key: `${s.namespace}/${s.name}`, clusterIPs: s.clusterIPs }));
  return { name, fabricNetns, gateway4, gateway6, nodes, pods, apiServers, services, ports, servers, ops };
}

function baseSysctls(netns: string): Op[] {
  return [
    sysctl(
      netns,
      'net.ipv4.ip_forward=1',
      'net.ipv6.conf.all.forwarding=1',
      'net.ipv4.conf.all.rp_filter=0',
      'net.ipv4.conf.default.rp_filter=0',
      'net.ipv6.conf.default.accept_dad=0',
    ),
  ];
}

/** Fabric route toward an address that lives behind a node. */
function fabricRoute(fabricNetns: string, ip: string, node: NodePlan): Op {
  if (node.addresses.includes(ip)) return ipn(fabricNetns, 'route', 'add', familyAddr(ip), 'dev', node.fabricIf);
  const via = isIPv6(ip) ? NODE_LINKLOCAL6 : node.addresses.find((a) => !isIPv6(a));
  if (!via) throw new Error(`plan node ${node.name}: an IPv4 address is needed to route pod address ${ip}`);
  return ipn(
    fabricNetns,
    'route',
    'add',
    familyAddr(ip),
    'via',
    via,
    'dev',
    node.fabricIf,
    ...(isIPv6(ip) ? [] : ['onlink']),
  );
}

function planPod(p: PodObj, lab: string, nodes: Map<string, NodePlan>, vlanNetworks: Set<string>): PodPlan {
  const key = `${p.namespace}/${p.name}`;
  if (!p.nodeName) throw new Error(`plan pod ${key}: spec.nodeName is empty`);
  const node = nodes.get(p.nodeName);
  if (!node) throw new Error(`plan pod ${key}: spec.nodeName "${p.nodeName}" is not a Node of the state`);
  if (p.hostNetwork) {
    return { key, node: node.name, netns: node.netns, hostNetwork: true, ips: node.addresses, secondary: [] };
  }
  if (p.ips.length === 0) throw new Error(`plan pod ${key}: status.podIPs is empty`);
  const secondary = p.networks.map((n, i): SecondaryPlan => {
    if (n.ips.length === 0) throw new Error(`plan pod ${key}: network-status entry ${n.network} has no ips`);
    const bridge = vlanNetworks.has(n.network) ? { bridge: vlanBridge(n.network) } : {};
    return {
      network: n.network,
      podIf: n.interface ?? `net${i + 1}`,
      hostIf: secondaryHostIf(key, n.network),
      ips: n.ips,
      ...bridge,
    };
  });
  return {
    key,
    node: node.name,
    netns: `${lab}-p-${nsPart(p.namespace)}-${nsPart(p.name)}`,
    hostNetwork: false,
    hostIf: podHostIf(key),
    ips: p.ips,
    secondary,
  };
}

/**
 * VLAN networks (a NAD with `vlan` in its CNI config): the representors of the network's
 * pods are ports of one bridge per node, joined through a bridge in the fabric, as an
 * SR-IOV embedded switch and the wire behind it would. The bridges do not filter VLANs,
 * so 802.1Q and 802.1ad (QinQ) tagged frames cross them unchanged; the pods' own
 * traffic stays untagged (no 8021q module here), tagged frames are hand-built.
 */
function vlanSwitchOps(fabricNetns: string, pods: PodPlan[], nodes: Map<string, NodePlan>): Op[] {
  const ops: Op[] = [];
  const bridge = (netns: string, br: string): Op[] => [
    // VLAN filtering stays off (the default; some kernels cannot even set the attribute).
    // No multicast snooping: neighbour discovery must not depend on MLD reports seen in time.
    ipn(netns, 'link', 'add', br, 'type', 'bridge', 'mcast_snooping', '0'),
    ipn(netns, 'link', 'set', br, 'up'),
  ];
  const nodesOf = new Map<string, Set<string>>();
  for (const pod of pods) {
    for (const s of pod.secondary)
      if (s.bridge) nodesOf.set(s.network, (nodesOf.get(s.network) ?? new Set()).add(pod.node));
  }
  for (const [network, names] of nodesOf) {
    const br = vlanBridge(network);
    ops.push(...bridge(fabricNetns, br));
    for (const n of names) {
      const node = nodes.get(n)!;
      const uplink = vlanUplink(n, network);
      ops.push(...bridge(node.netns, br));
      ops.push(ipn(fabricNetns, 'link', 'add', uplink, 'type', 'veth', 'peer', 'name', uplink, 'netns', node.netns));
      for (const [netns, ifname] of [
        [fabricNetns, uplink],
        [node.netns, uplink],
      ]) {
        ops.push(ipn(netns, 'link', 'set', ifname, 'master', br), ipn(netns, 'link', 'set', ifname, 'up'));
      }
    }
  }
  return ops;
}

function podOps(pod: PodPlan, node: NodePlan, peers: Map<string, string[]>): Op[] {
  const ops: Op[] = [{ argv: ['ip', 'netns', 'add', pod.netns], netns: pod.netns }];
  ops.push(sysctl(pod.netns, 'net.ipv6.conf.default.accept_dad=0', 'net.ipv6.conf.all.accept_dad=0'));
  ops.push(ipn(pod.netns, 'link', 'set', 'lo', 'up'));
  const links = [
    { hostIf: pod.hostIf!, podIf: 'eth0', ips: pod.ips, primary: true, bridge: undefined },
    ...pod.secondary.map((s) => ({ hostIf: s.hostIf, podIf: s.podIf, ips: s.ips, primary: false, bridge: s.bridge })),
  ];
  for (const l of links) {
    ops.push(ipn(node.netns, 'link', 'add', l.hostIf, 'type', 'veth', 'peer', 'name', l.podIf, 'netns', pod.netns));
    if (l.bridge) {
      ops.push(ipn(node.netns, 'link', 'set', l.hostIf, 'master', l.bridge));
    } else {
      // Proxy ARP answers broadcasts after a random delay of up to 0.8 s unless proxy_delay=0.
      ops.push(sysctl(node.netns, `net.ipv4.conf.${l.hostIf}.proxy_arp=1`, `net.ipv4.neigh.${l.hostIf}.proxy_delay=0`));
      ops.push(ipn(node.netns, 'addr', 'add', `${POD_GATEWAY6}/64`, 'dev', l.hostIf, 'nodad'));
    }
    ops.push(ipn(node.netns, 'link', 'set', l.hostIf, 'up'));
    for (const ip of l.ips) {
      ops.push(ipn(pod.netns, 'addr', 'add', familyAddr(ip), 'dev', l.podIf, ...(isIPv6(ip) ? ['nodad'] : [])));
    }
    ops.push(ipn(pod.netns, 'link', 'set', l.podIf, 'up'));
    // On a bridge port the route carries no traffic: it records which representor an
    // address is behind, as the sysfs VF link does on a real node (endpoint discovery).
    for (const ip of l.ips) ops.push(ipn(node.netns, 'route', 'add', familyAddr(ip), 'dev', l.hostIf, 'scope', 'link'));
    if (l.primary) {
      ops.push(ipn(pod.netns, 'route', 'add', `${POD_GATEWAY4}/32`, 'dev', 'eth0', 'scope', 'link'));
      ops.push(ipn(pod.netns, 'route', 'add', 'default', 'via', POD_GATEWAY4, 'dev', 'eth0'));
      ops.push(ipn(pod.netns, '-6', 'route', 'add', 'default', 'via', POD_GATEWAY6, 'dev', 'eth0'));
    }
  }
  // A secondary network reaches its own peers only: their addresses route over its
  // interface, through the node (proxy ARP) or, on a VLAN network's bridge, directly.
  for (const s of pod.secondary) {
    for (const ip of peers.get(s.network) ?? []) {
      if (s.ips.includes(ip)) continue;
      const how = s.bridge
        ? ['dev', s.podIf, 'scope', 'link']
        : ['via', isIPv6(ip) ? POD_GATEWAY6 : POD_GATEWAY4, 'dev', s.podIf, 'onlink'];
      ops.push(ipn(pod.netns, 'route', 'add', familyAddr(ip), ...how));
    }
  }
  return ops;
}

/** The backend addresses and port of a service port, kube-proxy style. */
export function serviceBackends(
  svc: ServiceObj,
  port: ServiceObj['ports'][number],
  snapshot: Snapshot,
  pods: PodPlan[],
): { ip: string; port: number }[] {
  if (!svc.selector) return [];
  const selector = svc.selector;
  const out: { ip: string; port: number }[] = [];
  for (const pod of snapshot.pods) {
    if (pod.namespace !== svc.namespace) continue;
    if (!Object.entries(selector).every(([k, v]) => pod.labels[k] === v)) continue;
    let target: number | undefined;
    if (typeof port.targetPort === 'number') target = port.targetPort;
    else target = pod.ports.find((cp) => cp.name === port.targetPort && cp.protocol === port.protocol)?.containerPort;
    if (target === undefined) continue;
    const plan = pods.find((p) => p.key === `${pod.namespace}/${pod.name}`)!;
    for (const ip of plan.ips) out.push({ ip, port: target });
  }
  return out;
}

function serviceOps(svc: ServiceObj, snapshot: Snapshot, nodes: NodePlan[], pods: PodPlan[]): Op[] {
  const ops: Op[] = [];
  for (const node of nodes) {
    for (const v6 of [false, true]) {
      const clusterIPs = svc.clusterIPs.filter((ip) => isIPv6(ip) === v6);
      if (clusterIPs.length === 0) continue;
      const tool = v6 ? 'ip6tables' : 'iptables';
      const nat = (...args: string[]): Op => ({ argv: inNs(node.netns, [tool, '-w', '-t', 'nat', ...args]) });
      for (const port of svc.ports) {
        if (port.protocol === 'SCTP') continue;
        const backends = serviceBackends(svc, port, snapshot, pods).filter((b) => isIPv6(b.ip) === v6);
        if (backends.length === 0) continue;
        const chain = `NF-SVC-${shortHash(`${svc.namespace}/${svc.name}/${port.port}/${port.protocol}/${v6}`, 10).toUpperCase()}`;
        const proto = port.protocol.toLowerCase();
        ops.push(nat('-N', chain));
        backends.forEach((b, i) => {
          const left = backends.length - i;
          const stat = left > 1 ? ['-m', 'statistic', '--mode', 'random', '--probability', (1 / left).toFixed(5)] : [];
          const dest = v6 ? `[${b.ip}]:${b.port}` : `${b.ip}:${b.port}`;
          ops.push(nat('-A', chain, '-p', proto, ...stat, '-j', 'DNAT', '--to-destination', dest));
        });
        for (const cip of clusterIPs) {
          for (const hook of ['PREROUTING', 'OUTPUT']) {
            ops.push(nat('-A', hook, '-d', familyAddr(cip), '-p', proto, '--dport', String(port.port), '-j', chain));
          }
        }
      }
    }
  }
  return ops;
}
