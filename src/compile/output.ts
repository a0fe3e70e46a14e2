// The compiler's output contract: the complete desired content of every policy map,
// as encoded key/value Buffers (codecs in src/wire/), plus the names that
// let trace/inspect/flows turn ids back into policies and rules. reconcile/ diffs this
// against the pinned maps; trace loads it into private maps. Each endpoint also carries
// what its entry means (flags, hooks, tunnel): nobody decodes the bytes to learn it.
import type { Endpoint } from '../wire/endpoint';
import type { PolicyMapName } from '../wire/maps';
import type { TcHook } from './hooks';

/** key hex -> { key, value } per map. Hex keys make diffs and determinism cheap. */
export type MapContent = Map<string, { key: Buffer; value: Buffer }>;
export type DesiredMaps = Record<PolicyMapName, MapContent>;

/** Contents a Compiler derived from an earlier one of its own, with the keys in which
 *  they differ: a diff against that earlier content (what the reconciler last applied)
 *  looks at those keys only. */
const derivations = new WeakMap<MapContent, { base: MapContent; keys: ReadonlySet<string> }>();

/** Records that `content` equals `base` but at `keys` (both then read-only). */
export function derive(content: MapContent, base: MapContent, keys: ReadonlySet<string>): void {
  derivations.set(content, { base, keys });
}

/** The keys in which `content` differs from `base`, when it was derived from it. */
export function changedKeys(content: MapContent, base: MapContent): ReadonlySet<string> | undefined {
  const d = derivations.get(content);
  return d?.base === base ? d.keys : undefined;
}

export interface CompiledRuleInfo {
  table: number;
  index: number;
  policyId: number;
  policy: string; // policyName(ref)
  rule: string; // ruleName(rule)
  action: 'allow' | 'deny' | 'pass';
  tier: 'system' | 'admin' | 'netpol' | 'baseline';
}

/** An endpoint and its nf_endpoints entry: the Endpoint fields are that entry's value as
 *  compiled (id, tables, chunks, NfEpFlag bits, revision). */
export interface CompiledEndpoint extends Endpoint {
  /** Interface this endpoint is enforced on (host veth, VF representor, host iface). */
  ifname: string;
  ifindex: number;
  kind: 'pod' | 'host' | 'secondary';
  pod?: string; // "ns/name"
  node?: string;
  network?: string; // "ns/nad" for secondary networks
  /** The tc hooks its program sits on (hooksFor). A fallback table never changes them:
   *  it replaces a table only where there is one, and leaves the flags. */
  hooks: readonly TcHook[];
  /** In transparent-tunnel mode (NfEpFlag.TUNNEL): the agent programs the tunnel's
   *  routes while any endpoint is. */
  tunnel: boolean;
  /** Per direction, the table that denies everything but the privileged (system-tier)
   *  rules: where the endpoint goes when its own table cannot be enforced and it has no
   *  last enforced table to keep (0: the direction has no table). Its entries are in
   *  CompileResult.isolation. */
  isolationTables?: { ingress: number; egress: number };
  /** Chunks of those isolation tables (nf_endpoint.chunks when it falls back to one). */
  isolationChunks?: { ingress: number; egress: number };
  /** A direction over a capacity limit (rules per table): its table here is the
   *  isolation table, and reconcile keeps the last enforced table instead if there is one. */
  refused?: { directions: ('ingress' | 'egress')[]; error: string };
}

export interface CompileResult {
  maps: DesiredMaps;
  endpoints: CompiledEndpoint[];
  rules: CompiledRuleInfo[];
  /** policy_id -> policy name (index = id). */
  policies: string[];
  /** identity id -> description ("ns/labels" or "node/labels"), ids ascending. A Map:
   *  at 100k identities a record of integer keys costs several times more to fill. */
  identities: ReadonlyMap<number, string>;
  errors: string[];
  /** The entries of every endpoint's isolation tables (CompiledEndpoint.isolationTables),
   *  written by reconcile only when an endpoint falls back to one. */
  isolation: Pick<DesiredMaps, 'nf_rules' | 'nf_ports' | 'nf_peer_cidr' | 'nf_peer_ident'>;
}
