// netfence.io/v1alpha1 NetfenceConfig (netfence.yaml): agent settings with a default for
// every field. Fields sit at the top level (component-config style) or under `spec`.
import { Field } from './field';
import { formatIp, parseIp } from './ip';
import type { Capacity, NetfenceConfig, RedirectConfig } from './types';

export function defaultConfig(): NetfenceConfig {
  return {
    hostInterfaces: ['eth*'],
    privileged: {
      enabled: true,
      established: true,
      loopback: true,
      apiServers: [],
      kubeletPort: 10250,
      agentPorts: [9402],
    },
    serviceCIDRs: [],
    localDelivery: true,
    metricsAddress: '127.0.0.1:9402',
    eventsPerSecond: 100,
    bpffsRoot: '/sys/fs/bpf/netfence',
    capacity: defaultCapacity(),
  };
}

/** The max_entries declared in bpf/ (test/unit/capacity.test.ts checks they agree): sized
 *  for 100k CIDRs, 10k pods and 2k policies per node, old and new tables side by side. */
export function defaultCapacity(): Capacity {
  return {
    endpoints: 16384,
    identities: 65536,
    peerIdentities: 262144,
    peerCidrs: 262144,
    ports: 65536,
    rules: 131072,
    conntrack: 131072,
  };
}

/** Above 2^24 a hash map's bucket array alone is hundreds of MB: a typo, not a plan. */
export const MAX_CAPACITY = 1 << 24;

function parseCapacity(f: Field): Capacity {
  const d = defaultCapacity();
  if (f.present) f.object(Object.keys(d));
  const n = (k: keyof Capacity): number => f.get(k).optInt(1, MAX_CAPACITY, d[k])!;
  return {
    endpoints: n('endpoints'),
    identities: n('identities'),
    peerIdentities: n('peerIdentities'),
    peerCidrs: n('peerCidrs'),
    ports: n('ports'),
    rules: n('rules'),
    conntrack: n('conntrack'),
  };
}

/** Default fwmark and routing table of the transparent tunnel ("NF" in ASCII). */
export const DEFAULT_REDIRECT_MARK = 0x4e46;
export const DEFAULT_REDIRECT_TABLE = 0x4e46;

/** "ip:port" or "[v6]:port" -> { ip (canonical), port }. */
export function parseHostPort(text: string): { ip: string; port: number } | undefined {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:]+):(\d{1,5})$/.exec(text);
  const ip = m && parseIp(m[1]);
  const port = m ? Number(m[2]) : 0;
  if (!ip || port < 1 || port > 65535) return undefined;
  return { ip: formatIp(ip), port };
}

function endpointText(f: Field): string {
  const s = f.string();
  const hp = parseHostPort(s);
  if (!hp) f.fail(`must be "ip:port" or "[ipv6]:port", got "${s}"`);
  return hp.ip.includes(':') ? `[${hp.ip}]:${hp.port}` : `${hp.ip}:${hp.port}`;
}

function strings(f: Field, dflt: string[]): string[] {
  return f.present ? f.items().map((i) => i.string()) : dflt;
}

function parseRedirect(f: Field, serviceCIDRs: string[]): RedirectConfig {
  f.object(['mode', 'mark', 'table', 'uplink', 'gateway', 'gateway6', 'serviceCIDRs']);
  const gateway = f.get('gateway').present ? f.get('gateway').ip() : undefined;
  const gateway6 = f.get('gateway6').present ? f.get('gateway6').ip() : undefined;
  if (gateway?.includes(':')) f.get('gateway').fail(`must be an IPv4 address, got "${gateway}"`);
  if (gateway6 !== undefined && !gateway6.includes(':'))
    f.get('gateway6').fail(`must be an IPv6 address, got "${gateway6}"`);
  const sc = f.get('serviceCIDRs');
  return {
    // direct by measurement (`npm run bench`, tunnel part; bench/REPORT.md): both modes lose
    // no DNS query through a same-node ClusterIP (test/e2e/tunnel.test.ts), and direct has the
    // higher connection rate (no second pass through the node's netfilter).
    mode: f.get('mode').oneOf(['fwmark', 'direct'] as const, 'direct'),
    mark: f.get('mark').optInt(1, 0xffffffff, DEFAULT_REDIRECT_MARK)!,
    table: f.get('table').optInt(1, 0xfffffffe, DEFAULT_REDIRECT_TABLE)!,
    uplink: f.get('uplink').string(),
    ...(gateway !== undefined && { gateway }),
    ...(gateway6 !== undefined && { gateway6 }),
    serviceCIDRs: sc.present ? sc.items().map((c) => c.cidrText()) : serviceCIDRs,
  };
}

const FIELDS = [
  'hostInterfaces',
  'privileged',
  'serviceCIDRs',
  'localDelivery',
  'redirect',
  'metricsAddress',
  'eventsPerSecond',
  'bpffsRoot',
  'capacity',
];

export function parseNetfenceConfig(doc: Field): NetfenceConfig {
  const top = Object.keys(doc.object());
  const nested = top.includes('spec');
  doc.object(nested ? ['apiVersion', 'kind', 'metadata', 'spec'] : ['apiVersion', 'kind', 'metadata', ...FIELDS]);
  const c = nested ? doc.get('spec') : doc;
  if (nested) c.object(FIELDS);
  const d = defaultConfig();
  const p = c.get('privileged');
  if (p.present) p.object(['enabled', 'established', 'loopback', 'apiServers', 'kubeletPort', 'agentPorts']);
  const serviceCIDRs = c
    .get('serviceCIDRs')
    .items()
    .map((f) => f.cidrText());
  const metrics = c.get('metricsAddress');
  if (metrics.present && !/^[^\s]*:\d{1,5}$/.test(metrics.string()))
    metrics.fail(`must be "host:port", got "${metrics.string()}"`);
  const redirect = c.get('redirect');
  return {
    hostInterfaces: strings(c.get('hostInterfaces'), d.hostInterfaces),
    privileged: {
      enabled: p.get('enabled').bool(d.privileged.enabled),
      established: p.get('established').bool(d.privileged.established),
      loopback: p.get('loopback').bool(d.privileged.loopback),
      apiServers: p.get('apiServers').items().map(endpointText),
      kubeletPort: p.get('kubeletPort').optInt(1, 65535, d.privileged.kubeletPort)!,
      agentPorts: p.get('agentPorts').present
        ? p
            .get('agentPorts')
            .items()
            .map((f) => f.int(1, 65535))
        : d.privileged.agentPorts,
    },
    serviceCIDRs,
    localDelivery: c.get('localDelivery').bool(d.localDelivery),
    ...(redirect.present && { redirect: parseRedirect(redirect, serviceCIDRs) }),
    metricsAddress: metrics.present ? metrics.string() : d.metricsAddress,
    eventsPerSecond: c.get('eventsPerSecond').optInt(0, 1_000_000, d.eventsPerSecond)!,
    bpffsRoot: c.get('bpffsRoot').optString() ?? d.bpffsRoot,
    capacity: parseCapacity(c.get('capacity')),
  };
}
