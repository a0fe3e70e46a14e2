// compile(snapshot, node, endpoints): the complete desired content of the policy
// maps for one node. Pure and deterministic: same input, same bytes.
import { policyName, type Direction } from '../model/rules';
import type { Snapshot } from '../model/types';
import {
  NF_MAX_RULES,
  NfEpFlag,
  NfLocalKind,
  encodeAddr,
  encodeAddrLpmKey,
  encodeEndpoint,
  encodeLocal,
  encodeU32,
  encodeU8,
} from '../datapath/codecs';
import { type DiscoveredEndpoint, endpointKey, endpointLabel } from './endpoint';
import { assignIds, hash32 } from './hash';
import { buildIdentities, type Identities } from './identities';
import type { CompiledEndpoint, CompiledRuleInfo, CompileResult, DesiredMaps } from './output';
import { MAP_WRITE_ORDER } from './output';
import { buildRuleList, type EndpointContext } from './rulelist';
import { contentKey, type CompiledRule } from './ruleset';
import { NO_POLICY_ID } from './synthetic';
import { addTableEntries, put } from './tables';

function emptyMaps(): DesiredMaps {
  return Object.fromEntries(MAP_WRITE_ORDER.map((m) => [m, new Map()])) as DesiredMaps;
}

interface Resolved {
  ep: DiscoveredEndpoint;
  ctx: EndpointContext;
  node?: string;
  addresses: string[]; // the endpoint's own addresses (nf_local_addrs)
}

function resolveEndpoint(snapshot: Snapshot, nodeName: string, ep: DiscoveredEndpoint): Resolved {
  const nodeOf = (name: string | undefined) => snapshot.nodes.find((n) => n.name === name);
  if (ep.kind === 'host') {
    const node = nodeOf(nodeName);
    if (!node) throw new Error(`node ${nodeName} not found`);
    const ctx: EndpointContext = { kind: 'host', endpoint: { kind: 'node', node }, nodeAddresses: node.addresses };
    return { ep, ctx, node: node.name, addresses: [] };
  }
  const pod = snapshot.pods.find((p) => `${p.namespace}/${p.name}` === ep.pod);
  if (!pod) throw new Error(`pod ${ep.pod ?? '(none)'} not found`);
  if (pod.hostNetwork) throw new Error(`pod ${ep.pod} uses the host network (it is enforced as its node)`);
  let addresses = pod.ips;
  if (ep.kind === 'secondary') {
    if (!ep.network) throw new Error('field network: required for a secondary endpoint');
    addresses = pod.networks.find((n) => n.network === ep.network)?.ips ?? [];
  }
  // Own node as the reference finds it: by the pod's nodeName only.
  const nodeAddresses = nodeOf(pod.nodeName)?.addresses ?? [];
  const ctx: EndpointContext = { kind: ep.kind, endpoint: { kind: 'pod', pod }, network: ep.network, nodeAddresses };
  return { ep, ctx, node: pod.nodeName ?? nodeName, addresses };
}

const FLAGS = { pod: NfEpFlag.POD, host: NfEpFlag.HOST, secondary: NfEpFlag.POD | NfEpFlag.SECONDARY } as const;

/** With a redirect configured, the transparent tunnel applies to every pod's primary interface;
 *  with privileged established flows, a node's connections survive policy changes. */
function flags(snapshot: Snapshot, kind: CompiledEndpoint['kind']): number {
  const { enabled, established } = snapshot.config.privileged;
  return (
    FLAGS[kind] |
    (kind === 'pod' && snapshot.config.redirect ? NfEpFlag.TUNNEL : 0) |
    (kind === 'host' && enabled && established ? NfEpFlag.KEEP_ESTABLISHED : 0)
  );
}

function addIdentityEntries(maps: DesiredMaps, ids: Identities): void {
  for (const owner of ids.byAddress.values()) put(maps, 'nf_ident_exact', encodeAddr(owner.ip), encodeU32(owner.identity));
}

function addLocalEntries(maps: DesiredMaps, snapshot: Snapshot, nodeName: string, resolved: Resolved[]): void {
  for (const r of resolved) {
    for (const ip of r.addresses) put(maps, 'nf_local_addrs', encodeAddr(ip), encodeLocal({ ifindex: r.ep.ifindex, kind: NfLocalKind.POD }));
  }
  for (const ip of snapshot.nodes.find((n) => n.name === nodeName)?.addresses ?? []) {
    put(maps, 'nf_local_addrs', encodeAddr(ip), encodeLocal({ ifindex: 0, kind: NfLocalKind.NODE }));
  }
  const svc = [...snapshot.config.serviceCIDRs, ...(snapshot.config.redirect?.serviceCIDRs ?? [])];
  for (const cidr of svc) put(maps, 'nf_svc_cidrs', encodeAddrLpmKey(cidr), encodeU8(1));
}

/** Revision: changes whenever either table changes (tables are content-addressed over
 *  resolved identity sets, so a new identity a rule selects is a new table). */
function revision(tables: [number, number]): number {
  return hash32(`revision\0${tables[0]}\0${tables[1]}`) || 1;
}

export function compile(snapshot: Snapshot, nodeName: string, endpoints: DiscoveredEndpoint[]): CompileResult {
  const ids = buildIdentities(snapshot);
  const errors = [...ids.errors];
  const maps = emptyMaps();

  // Rule lists per endpoint; refused endpoints are reported and left out entirely.
  const lists: { r: Resolved; rules: Record<Direction, CompiledRule[]> }[] = [];
  const sorted = [...endpoints].sort((a, b) => a.ifindex - b.ifindex || (a.ifname < b.ifname ? -1 : a.ifname > b.ifname ? 1 : 0));
  for (const ep of sorted) {
    let r: Resolved;
    try {
      r = resolveEndpoint(snapshot, nodeName, ep);
    } catch (err) {
      errors.push(`compile endpoint ${endpointLabel(ep)}: ${(err as Error).message}`);
      continue;
    }
    const rules = { ingress: buildRuleList(snapshot, ids, r.ctx, 'ingress'), egress: buildRuleList(snapshot, ids, r.ctx, 'egress') };
    const over = (['ingress', 'egress'] as const).filter((d) => rules[d].length > NF_MAX_RULES);
    if (over.length) {
      errors.push(
        ...over.map((d) => `compile endpoint ${endpointLabel(ep)}: ${d} table needs ${rules[d].length} rules, limit ${NF_MAX_RULES}`),
      );
      continue;
    }
    lists.push({ r, rules });
  }

  const contents = new Map<string, CompiledRule[]>();
  for (const l of lists) for (const d of ['ingress', 'egress'] as const) if (l.rules[d].length) contents.set(contentKey(l.rules[d]), l.rules[d]);
  const tableIds = assignIds(contents.keys(), 'table');
  // Policy ids index every policy of the snapshot (not only those in use), so every
  // node compiles the same nf_rules bytes for the same table.
  const policies = [...new Set(snapshot.policies.map((p) => policyName(p.ref)))].sort();
  const policyIds = new Map(policies.map((p, i) => [p, i]));
  const policyId = (r: CompiledRule) => (r.policy === undefined ? NO_POLICY_ID : policyIds.get(r.policy)!);

  const ruleInfos: CompiledRuleInfo[] = [];
  for (const [key, rules] of [...contents].sort(([a], [b]) => tableIds.get(a)! - tableIds.get(b)!)) {
    const table = tableIds.get(key)!;
    addTableEntries(maps, table, rules, policyId);
    rules.forEach((r, index) =>
      ruleInfos.push({ table, index, policyId: policyId(r), policy: r.policy ?? '', rule: r.rule, action: r.action, tier: r.tier }),
    );
  }

  const epIds = assignIds(lists.map((l) => endpointKey(l.r.ep)), 'endpoint');
  const compiled: CompiledEndpoint[] = lists.map(({ r, rules }) => {
    const table = (d: Direction) => (rules[d].length ? tableIds.get(contentKey(rules[d]))! : 0);
    const tables: [number, number] = [table('ingress'), table('egress')];
    const ce: CompiledEndpoint = {
      ifname: r.ep.ifname,
      ifindex: r.ep.ifindex,
      id: epIds.get(endpointKey(r.ep))!,
      kind: r.ep.kind,
      ...(r.ep.pod !== undefined && { pod: r.ep.pod }),
      ...(r.node !== undefined && { node: r.node }),
      ...(r.ep.network !== undefined && { network: r.ep.network }),
      ingressTable: tables[0],
      egressTable: tables[1],
      revision: revision(tables),
    };
    const value = encodeEndpoint({ id: ce.id, ingressTable: ce.ingressTable, egressTable: ce.egressTable, flags: flags(snapshot, ce.kind), revision: ce.revision });
    put(maps, 'nf_endpoints', encodeU32(ce.ifindex), value);
    return ce;
  });

  addIdentityEntries(maps, ids);
  addLocalEntries(maps, snapshot, nodeName, lists.map((l) => l.r));

  return {
    maps,
    endpoints: compiled,
    rules: ruleInfos,
    policies,
    identities: Object.fromEntries(ids.list.map((i) => [i.id, i.description])),
    errors,
  };
}
