// compile(snapshot, node, endpoints): the complete desired content of the policy
// maps for one node. Deterministic: same input, same bytes, whatever a Compiler saw
// before. A long-lived Compiler keeps per-identity and per-policy work between calls,
// so a snapshot that differs by a pod of an existing label set recompiles in
// milliseconds (its rule lists and tables are reused; only addresses are redone).
import { policyName, type Direction, type Policy } from '../model/rules';
import type { NamespaceObj, NodeObj, PodObj, Snapshot } from '../model/types';
import { NF_MAX_RULES, NfEpFlag, NfLocalKind } from '../wire/abi';
import { encodeAddr, encodeAddrLpmKey, encodeAddrPooled } from '../wire/addr';
import { encodeU32, encodeU32Pooled, encodeU8, keyHex } from '../wire/bytes';
import { chunkCount, encodeEndpoint } from '../wire/endpoint';
import { encodeLocal, type Local } from '../wire/local';
import { type DiscoveredEndpoint, endpointKey, endpointLabel } from './endpoint';
import { hooksFor } from './hooks';
import { type IdKind, assignIds, endpointRevision, hash32, idHash } from './hash';
import {
  type Address,
  type CollectContext,
  type Collected,
  type IdentitySet,
  KeyInterner,
  PodFacts,
  assignIdentities,
  collectIdentities,
  numbersExactly,
  primaryKey,
} from './collect';
import {
  type Draft,
  type Identities,
  type NamespaceInfo,
  type PartInterner,
  type PodPart as LabelPart,
  namespaceIndex,
  namespaceInfo,
  nodeDraft,
} from './identities';
import { isolationList } from './isolation';
import { Memo } from './memo';
import { type PodPart, PodBook, sameItems } from './pod-book';
import type { CompiledEndpoint, CompiledRuleInfo, CompileResult, DesiredMaps } from './output';
import { POLICY_MAPS, type PolicyMapName } from '../wire/maps';
import {
  type EndpointContext,
  type Expansion,
  KeyedPolicy,
  PolicyIndex,
  type RuleList,
  RuleListBuilder,
  contextKey,
} from './rulelist';
import type { CompiledRule } from './ruleset';
import { Selection } from './selection';
import { statsSlots } from './stats-slots';
import { NO_POLICY_ID } from './synthetic';
import { TABLE_MAPS, type TableEntry, type TableMapName, isTableMap, putEntries, tableEntries } from './tables';

type Lists = Record<Direction, RuleList>;
const DIRECTIONS = ['ingress', 'egress'] as const;

interface Resolved {
  ep: DiscoveredEndpoint;
  ctx: EndpointContext;
  node?: string;
  addresses: string[]; // the endpoint's own addresses (nf_local_addrs)
}

/** Pods and nodes by name (the first of a name, as a linear search finds it). */
interface Lookup {
  pod: (name: string) => PodObj | undefined;
  node: (name: string | undefined) => NodeObj | undefined;
  /** A pod's primary identity (what subjects and its own named ports see). */
  self: (pod: PodObj) => Draft;
}

function firstByName<T>(items: readonly T[], name: (t: T) => string): Map<string, T> {
  const out = new Map<string, T>();
  for (const t of items) if (!out.has(name(t))) out.set(name(t), t);
  return out;
}

function lookup(snapshot: Snapshot, part: PodPart, self: (pod: PodObj) => Draft): Lookup {
  const nodes = firstByName(snapshot.nodes, (n) => n.name);
  return {
    pod: (name) => part.pods.get(name),
    node: (name) => (name === undefined ? undefined : nodes.get(name)),
    self,
  };
}

function resolveEndpoint(find: Lookup, nodeName: string, ep: DiscoveredEndpoint): Resolved {
  if (ep.kind === 'host') {
    const node = find.node(nodeName);
    if (!node) throw new Error(`node ${nodeName} not found`);
    const ctx: EndpointContext = { kind: 'host', self: nodeDraft(node), nodeAddresses: node.addresses };
    return { ep, ctx, node: node.name, addresses: [] };
  }
  const pod = ep.pod === undefined ? undefined : find.pod(ep.pod);
  if (!pod) throw new Error(`pod ${ep.pod ?? '(none)'} not found`);
  if (pod.hostNetwork) throw new Error(`pod ${ep.pod} uses the host network (it is enforced as its node)`);
  let addresses = pod.ips;
  if (ep.kind === 'secondary') {
    if (!ep.network) throw new Error('field network: required for a secondary endpoint');
    addresses = pod.networks.find((n) => n.network === ep.network)?.ips ?? [];
  }
  // Own node as the reference finds it: by the pod's nodeName only.
  const nodeAddresses = find.node(pod.nodeName)?.addresses ?? [];
  const ctx: EndpointContext = { kind: ep.kind, self: find.self(pod), network: ep.network, nodeAddresses };
  return { ep, ctx, node: pod.nodeName ?? nodeName, addresses };
}

const FLAGS = { pod: NfEpFlag.POD, host: NfEpFlag.HOST, secondary: NfEpFlag.POD | NfEpFlag.SECONDARY } as const;

/** While a local pod has an egress table (`srcCheck`), every endpoint's tc egress runs the
 *  deferred egress check of a local source pod (without it, a policy-free pod's hooks pass at
 *  once); with service CIDRs, pods' destinations are looked up in them. The same for every
 *  endpoint of the node: computed once per compile. */
function nodeFlags(snapshot: Snapshot, srcCheck: boolean): number {
  return (srcCheck ? NfEpFlag.SRC_CHECK : 0) | (serviceCidrs(snapshot).length ? NfEpFlag.SVC_CIDRS : 0);
}

/** With a redirect configured, the transparent tunnel applies to every routed pod's primary
 *  interface (bridged traffic between a bridge's ports is never routed: no tunnel there);
 *  without, local delivery to every routed pod host veth (when enabled); with privileged
 *  established flows, a node's connections survive policy changes. */
function flags(snapshot: Snapshot, ep: DiscoveredEndpoint, node: number): number {
  const { enabled, established } = snapshot.config.privileged;
  const kind = ep.kind;
  return (
    FLAGS[kind] |
    node |
    (kind === 'pod' && !ep.bridge && snapshot.config.redirect ? NfEpFlag.TUNNEL : 0) |
    (localDelivery(snapshot, ep) ? NfEpFlag.LOCAL_DELIVERY : 0) |
    (kind === 'host' && enabled && established ? NfEpFlag.KEEP_ESTABLISHED : 0)
  );
}

function localDelivery(
  snapshot: Snapshot,
  ep: DiscoveredEndpoint,
): ep is DiscoveredEndpoint & Required<Pick<DiscoveredEndpoint, 'veth'>> {
  return (
    ep.kind === 'pod' &&
    ep.veth !== undefined &&
    !ep.bridge &&
    snapshot.config.localDelivery &&
    !snapshot.config.redirect
  );
}

function address(ip: string): Address {
  const key = encodeAddrPooled(ip);
  return { key, hex: keyHex(key) };
}

/** Makes a map entry, or finds it made (by a key naming everything it encodes). */
type Entries = (map: PolicyMapName, what: string, make: () => { key: Buffer; value: Buffer }) => void;

function serviceCidrs(snapshot: Snapshot): string[] {
  return [...snapshot.config.serviceCIDRs, ...(snapshot.config.redirect?.serviceCIDRs ?? [])];
}

function addLocalEntries(entry: Entries, snapshot: Snapshot, local: NodeObj | undefined, resolved: Resolved[]): void {
  for (const r of resolved) {
    const ifindex = r.ep.ifindex;
    const macs: Partial<NonNullable<DiscoveredEndpoint['veth']>> = localDelivery(snapshot, r.ep) ? r.ep.veth : {};
    const value: Local = { ifindex, kind: NfLocalKind.POD, ...macs };
    for (const ip of r.addresses)
      entry('nf_local_addrs', `${ip}\0${ifindex}\0${macs.podMac}\0${macs.hostMac}`, () => ({
        key: encodeAddr(ip),
        value: encodeLocal(value),
      }));
  }
  for (const ip of local?.addresses ?? [])
    entry('nf_local_addrs', `${ip}\0node`, () => ({
      key: encodeAddr(ip),
      value: encodeLocal({ ifindex: 0, kind: NfLocalKind.NODE }),
    }));
  for (const cidr of serviceCidrs(snapshot))
    entry('nf_svc_cidrs', cidr, () => ({ key: encodeAddrLpmKey(cidr), value: encodeU8(1) }));
}

/** The identities of one identity-key set and what depends only on them. */
interface Universe {
  set: IdentitySet;
  selection: Selection;
  /** identity id -> description, as CompileResult.identities. */
  descriptions: ReadonlyMap<number, string>;
}

interface PolicySet {
  /** The policy objects it was made from (a copy: the next are compared item by item). */
  objects: readonly Policy[];
  index: PolicyIndex;
  /** Sorted distinct policy names: a policy's id is its index. */
  names: string[];
  ids: ReadonlyMap<string, number>;
}

interface CompiledTable {
  /** Tells compiled tables apart (table map sets are keyed by these). */
  serial: number;
  content: string;
  entries: TableEntry[];
  infos: CompiledRuleInfo[];
}

/**
 * A compiler that keeps its work between calls: per pod and policy object their keys,
 * per identity set the selections and rule expansions, per endpoint context its rule
 * lists, per table its entries. Output is what a fresh compiler would produce.
 * Snapshot objects must not be mutated once compiled (build new ones: the caches key
 * on object identity); results share unchanged parts and are read-only.
 */
export class Compiler {
  private readonly hashes = new Memo<number>();
  /** Per id kind, key -> idHash (keys are big strings: a salted copy is never made twice);
   *  identity keys keep theirs in their record. */
  private readonly idHashes: Record<Exclude<IdKind, 'identity'>, Memo<number>> = {
    table: new Memo(),
    endpoint: new Memo(),
  };
  /** Pod parts (labels and named ports) by their raw key, shared by the pods that have them. */
  private readonly parts = new Memo<LabelPart>();
  private readonly keys = new KeyInterner();
  private readonly book = new PodBook();
  private nsIndex?: { namespaces: readonly NamespaceObj[]; index: (namespace: string) => NamespaceInfo };
  private readonly namespaces = new WeakMap<NamespaceObj, NamespaceInfo>();
  private readonly policyKeys = new WeakMap<Policy, string>();
  private universe?: Universe;
  /** Valid for the universe: rule expansions. */
  private readonly expansions = new Memo<Expansion>();
  private policies?: PolicySet;
  /** Valid for the universe: per endpoint context, its rule lists and the policy
   *  keys they were built from (a policy change rebuilds only the lists it touches). */
  private readonly lists = new Memo<{ applied: string[]; lists: Lists; checked: PolicySet }>();
  /** "table\0policy ids" -> the table compiled from a content. */
  private readonly tables = new Memo<CompiledTable>();
  /** Endpoint, local address and service entries by what they encode. */
  private readonly entries = new Memo<{ hex: string; entry: { key: Buffer; value: Buffer } }>();
  /** Serials of a compile's tables -> its table maps: a table set seen lately
   *  (unchanged, or changed back) gets the same map instances. */
  private readonly tableSets = new Memo<Pick<DesiredMaps, TableMapName>>();
  private serial = 0;
  private readonly memos = [
    this.hashes,
    ...Object.values(this.idHashes),
    this.expansions,
    this.lists,
    this.tables,
    this.tableSets,
    this.entries,
    this.parts,
  ];

  private readonly hash = (text: string): number => this.hashes.get(text, () => hash32(text));
  private readonly idHash = (kind: IdKind, key: string): number =>
    kind === 'identity' ? idHash(kind, key) : this.idHashes[kind].get(key, () => idHash(kind, key));

  private readonly namespaceInfo = (ns: NamespaceObj): NamespaceInfo => {
    let info = this.namespaces.get(ns);
    if (!info) this.namespaces.set(ns, (info = namespaceInfo(ns.name, ns.labels)));
    return info;
  };
  private readonly podParts: PartInterner = (raw, make) => this.parts.get(raw, make);
  private readonly facts = (pod: PodObj): PodFacts => new PodFacts(pod, this.podParts);
  private readonly known = (pod: PodObj, index: number): PodFacts | undefined => this.book.known(pod, index);

  compile(snapshot: Snapshot, nodeName: string, endpoints: DiscoveredEndpoint[]): CompileResult {
    for (const m of this.memos) m.nextGeneration();
    const namespaces = this.namespaceIndexOf(snapshot);
    const collect: CollectContext = {
      keys: this.keys,
      namespace: namespaces,
      facts: this.facts,
      known: this.known,
      address,
    };
    // A few pods changed within the identity set: the book applies just those.
    let universe = this.universe;
    let part = this.book.update(snapshot, collect, universe?.set.numbering, encodeU32Pooled);
    if (!part || !universe) {
      const collected = collectIdentities(snapshot, collect);
      universe = this.universeOf(collected);
      part = this.book.full(snapshot, collected, universe.set.numbering, encodeU32Pooled);
    }
    const { set } = universe;
    const ids: Identities = {
      list: set.list,
      get byId() {
        return set.byId;
      },
      byAddress: part.byAddress,
      errors: part.errors,
    };
    const policies = this.policySet(snapshot.policies);
    const builder = new RuleListBuilder(ids, universe.selection, this.expansions);
    const find = lookup(snapshot, part, (pod) => primaryKey(pod, collect).draft());
    const errors = [...ids.errors];

    // Rule lists per endpoint. An endpoint that cannot be resolved is reported and left
    // out; a direction over the rule limit is refused: it gets its isolation list (never
    // a truncated one, never none), and reconcile keeps its last enforced table if any.
    const lists: { r: Resolved; rules: Lists; isolation: Lists; refused?: CompiledEndpoint['refused'] }[] = [];
    const thisCall = new Map<string, { rules: Lists; isolation: Lists }>();
    const sorted = [...endpoints].sort(
      (a, b) => a.ifindex - b.ifindex || (a.ifname < b.ifname ? -1 : a.ifname > b.ifname ? 1 : 0),
    );
    for (const ep of sorted) {
      let r: Resolved;
      try {
        r = resolveEndpoint(find, nodeName, ep);
      } catch (err) {
        errors.push(`compile endpoint ${endpointLabel(ep)}: ${(err as Error).message}`);
        continue;
      }
      const key = contextKey(r.ctx);
      let built = thisCall.get(key);
      if (!built) {
        const rules = this.rulesOf(key, r.ctx, policies, builder);
        thisCall.set(
          key,
          (built = {
            rules,
            isolation: { ingress: isolationList(rules.ingress), egress: isolationList(rules.egress) },
          }),
        );
      }
      const { rules, isolation } = built;
      const over = DIRECTIONS.filter((d) => rules[d].rules.length > NF_MAX_RULES);
      if (over.length === 0) {
        lists.push({ r, rules, isolation });
        continue;
      }
      const messages = over.map(
        (d) =>
          `compile endpoint ${endpointLabel(ep)}: ${d} table needs ${rules[d].rules.length} rules, limit ${NF_MAX_RULES}`,
      );
      errors.push(...messages);
      const enforced = {
        ingress: over.includes('ingress') ? isolation.ingress : rules.ingress,
        egress: over.includes('egress') ? isolation.egress : rules.egress,
      };
      lists.push({ r, rules: enforced, isolation, refused: { directions: over, error: messages.join('; ') } });
    }

    const contents = new Map<string, CompiledRule[]>();
    const isolationContents = new Map<string, CompiledRule[]>();
    for (const l of lists) {
      for (const d of DIRECTIONS) {
        if (!l.rules[d].rules.length) continue;
        contents.set(l.rules[d].content, l.rules[d].rules);
        isolationContents.set(l.isolation[d].content, l.isolation[d].rules);
      }
    }
    const tableIds = assignIds([...contents.keys(), ...isolationContents.keys()], 'table', this.idHash);
    // Policy ids index every policy of the snapshot (not only those in use), so every
    // node compiles the same nf_rules bytes for the same table.
    const policyId = (r: CompiledRule) => (r.policy === undefined ? NO_POLICY_ID : policies.ids.get(r.policy)!);

    const ruleInfos: CompiledRuleInfo[] = [];
    const tables: CompiledTable[] = [];
    for (const [content, rules] of [...contents].sort(([a], [b]) => tableIds.get(a)! - tableIds.get(b)!)) {
      const t = this.table(tableIds.get(content)!, rules.map(policyId), content, rules);
      tables.push(t);
      for (const info of t.infos) ruleInfos.push(info);
    }
    const maps = this.tableMaps(tables);
    const isolationMaps = Object.fromEntries(TABLE_MAPS.map((m) => [m, new Map()])) as CompileResult['isolation'];
    for (const [content, rules] of isolationContents) {
      putEntries(isolationMaps, this.table(tableIds.get(content)!, rules.map(policyId), content, rules).entries);
    }

    const entries: Entries = (map, what, make) => {
      const e = this.entries.get(`${map}\0${what}`, () => {
        const entry = make();
        return { hex: keyHex(entry.key), entry };
      });
      maps[map].set(e.hex, e.entry);
    };
    const epIds = assignIds(
      lists.map((l) => endpointKey(l.r.ep)),
      'endpoint',
      this.idHash,
    );
    const slots = statsSlots(lists.map((l) => l.r.ep.ifindex));
    const table = (rules: (typeof lists)[number]['rules'], d: Direction) =>
      rules[d].rules.length ? tableIds.get(rules[d].content)! : 0;
    const node = nodeFlags(
      snapshot,
      lists.some(({ r, rules }) => r.ep.kind !== 'host' && table(rules, 'egress') !== 0),
    );
    const compiled: CompiledEndpoint[] = lists.map(({ r, rules, isolation, refused }) => {
      const tables: [number, number] = [table(rules, 'ingress'), table(rules, 'egress')];
      const entry = {
        id: epIds.get(endpointKey(r.ep))!,
        ingressTable: tables[0],
        egressTable: tables[1],
        ingressChunks: chunkCount(rules.ingress.rules.length),
        egressChunks: chunkCount(rules.egress.rules.length),
        flags: flags(snapshot, r.ep, node),
        // Changes whenever either table changes (tables are content-addressed over
        // resolved identity sets, so a new identity a rule selects is a new table).
        revision: endpointRevision(tables[0], tables[1], this.hash),
        statsSlot: slots.get(r.ep.ifindex)!,
      };
      const ce: CompiledEndpoint = {
        ifname: r.ep.ifname,
        ifindex: r.ep.ifindex,
        kind: r.ep.kind,
        ...(r.ep.pod !== undefined && { pod: r.ep.pod }),
        ...(r.node !== undefined && { node: r.node }),
        ...(r.ep.network !== undefined && { network: r.ep.network }),
        ...entry,
        hooks: hooksFor(entry),
        tunnel: (entry.flags & NfEpFlag.TUNNEL) !== 0,
        isolationTables: {
          ingress: tables[0] && tableIds.get(isolation.ingress.content)!,
          egress: tables[1] && tableIds.get(isolation.egress.content)!,
        },
        isolationChunks: {
          ingress: chunkCount(isolation.ingress.rules.length),
          egress: chunkCount(isolation.egress.rules.length),
        },
        ...(refused && { refused }),
      };
      const what = [
        ce.ifindex,
        entry.id,
        entry.ingressTable,
        entry.egressTable,
        entry.ingressChunks,
        entry.egressChunks,
        entry.flags,
        entry.statsSlot,
      ].join('\0');
      entries('nf_endpoints', what, () => ({
        key: encodeU32(ce.ifindex),
        value: encodeEndpoint(entry),
      }));
      return ce;
    });

    maps.nf_ident_exact = part.byAddress;
    addLocalEntries(
      entries,
      snapshot,
      find.node(nodeName),
      lists.map((l) => l.r),
    );

    return {
      maps,
      endpoints: compiled,
      rules: ruleInfos,
      policies: policies.names,
      identities: universe.descriptions,
      errors,
      isolation: isolationMaps,
    };
  }

  /** The namespace index, kept while the namespace objects are the same. */
  private namespaceIndexOf(snapshot: Snapshot): (namespace: string) => NamespaceInfo {
    const kept = this.nsIndex;
    if (kept && sameItems(kept.namespaces, snapshot.namespaces)) return kept.index;
    const index = namespaceIndex(snapshot, this.namespaceInfo);
    this.nsIndex = { namespaces: snapshot.namespaces.slice(), index };
    return index;
  }

  /** The identities of these keys; a new key set drops what depended on the old one. */
  private universeOf(collected: Collected): Universe {
    // Ids and all that depends on them are a function of the key set, not its order.
    if (!this.universe || !numbersExactly(this.universe.set, collected.keys)) {
      const set = assignIdentities(collected.keys);
      const descriptions = new Map<number, string>();
      for (let i = 0; i < set.list.length; i++) descriptions.set(set.list[i].id, set.list[i].description);
      this.universe = { set, selection: new Selection(set.list), descriptions };
      this.expansions.clear();
      this.lists.clear();
    }
    return this.universe;
  }

  /** An endpoint context's rule lists: kept while the identities are the same and,
   *  after a policy change, while the policies that apply to it are the same. */
  private rulesOf(key: string, ctx: EndpointContext, policies: PolicySet, builder: RuleListBuilder): Lists {
    const hit = this.lists.find(key);
    if (hit?.checked === policies) return hit.lists;
    const applied = policies.index.applied(ctx);
    const keys = applied.map((p) => p.key);
    const lists = hit && sameItems(hit.applied, keys) ? hit.lists : builder.build(ctx, applied);
    // Lists read from pod addresses change with any pod: never kept past this call.
    if (!lists.ingress.readsAddresses && !lists.egress.readsAddresses)
      this.lists.set(key, { applied: keys, lists, checked: policies });
    return lists;
  }

  /** The snapshot's policies (content keys made when read), and the sorted policy
   *  names (policy ids). Rule lists depend on every policy (which apply, in which order). */
  private policySet(policies: readonly Policy[]): PolicySet {
    const last = this.policies;
    if (last && sameItems(last.objects, policies)) return last;
    const patched = last && this.patched(last, policies);
    if (patched) return (this.policies = patched);
    if (last && this.sameContent(last.objects, policies)) {
      last.objects = policies.slice(); // equal content: what depends on it holds
      return last;
    }
    const index = new PolicyIndex(policies.map((policy) => new KeyedPolicy(policy, this.policyKey)));
    const names = [...new Set(policies.map((p) => policyName(p.ref)))].sort();
    return (this.policies = { objects: policies.slice(), index, names, ids: new Map(names.map((p, i) => [p, i])) });
  }

  private readonly policyKey = (policy: Policy): string => {
    let key = this.policyKeys.get(policy);
    if (key === undefined) this.policyKeys.set(policy, (key = JSON.stringify(policy)));
    return key;
  };

  /** Equal policies position by position (keys made only where the objects differ). */
  private sameContent(a: readonly Policy[], b: readonly Policy[]): boolean {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && this.policyKey(a[i]) !== this.policyKey(b[i])) return false;
    return true;
  }

  /** `last` with a few policies replaced in place by policies of the same name and
   *  namespace (the usual policy update): its names and ids hold, its index is patched.
   *  Undefined for any other change. */
  private patched(last: PolicySet, policies: readonly Policy[]): PolicySet | undefined {
    const before = last.objects;
    if (before.length !== policies.length) return undefined;
    const changed: number[] = [];
    for (let i = 0; i < policies.length && changed.length <= 64; i++) if (before[i] !== policies[i]) changed.push(i);
    if (changed.length > 64) return undefined;
    let index: PolicyIndex | undefined = last.index;
    for (const i of changed) {
      if (policyName(policies[i].ref) !== policyName(before[i].ref)) return undefined;
      index = index.replaced(i, new KeyedPolicy(policies[i], this.policyKey));
      if (!index) return undefined;
    }
    // Equal content (new objects): what depends on the set holds.
    if (this.sameContent(before, policies)) {
      last.objects = policies.slice();
      return last;
    }
    return { objects: policies.slice(), index, names: last.names, ids: last.ids };
  }

  private table(table: number, pids: number[], content: string, rules: CompiledRule[]): CompiledTable {
    const key = `${table}\0${pids.join(',')}`;
    let hit = this.tables.find(key);
    if (hit?.content !== content) {
      const infos = rules.map((r, index) => ({
        table,
        index,
        policyId: pids[index],
        policy: r.policy ?? '',
        rule: r.rule,
        action: r.action,
        tier: r.tier,
      }));
      this.tables.set(
        key,
        (hit = { serial: ++this.serial, content, entries: tableEntries(table, rules, pids), infos }),
      );
    }
    return hit;
  }

  /** Fresh maps; the table maps are shared with earlier results of the same tables. */
  private tableMaps(tables: CompiledTable[]): DesiredMaps {
    const shared = this.tableSets.get(tables.map((t) => t.serial).join(','), () => {
      const maps = Object.fromEntries(TABLE_MAPS.map((m) => [m, new Map()])) as Pick<DesiredMaps, TableMapName>;
      for (const t of tables) putEntries(maps, t.entries);
      return maps;
    });
    return Object.fromEntries(POLICY_MAPS.map((m) => [m, isTableMap(m) ? shared[m] : new Map()])) as DesiredMaps;
  }
}

/** One-shot compile (no state kept between calls). */
export function compile(snapshot: Snapshot, nodeName: string, endpoints: DiscoveredEndpoint[]): CompileResult {
  return new Compiler().compile(snapshot, nodeName, endpoints);
}
