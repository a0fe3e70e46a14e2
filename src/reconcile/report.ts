// What a reconcile pass reports (the agent turns it into /readyz, logs and metrics).
import type { PolicyMapName } from '../wire/maps';
import type { Counts } from './journal';

export type Direction = 'ingress' | 'egress';

/** What enforces a direction whose own table could not be: its last enforced table, or
 *  the isolation table (deny all but the privileged rules), or when even that does not
 *  fit, NF_TABLE_DENY (deny all). */
export type Fallback = 'kept' | 'isolated';

export interface EndpointFailure {
  ifname: string;
  ifindex: number;
  pod?: string;
  error: string;
  /** Set when the endpoint is enforced, but not with its desired tables: per direction
   *  that fell back, what it runs. Absent: nothing of this pass was applied to it (a new
   *  endpoint then has no programs; an enforced one keeps its whole previous entry). */
  fallback?: Partial<Record<Direction, Fallback>>;
}

export interface ReconcileReport {
  /** false: the shared phase failed and was undone; the previous state stays enforced. */
  ok: boolean;
  error?: string;
  /** Map named by a map-full error (E2BIG/ENOSPC), if any. */
  fullMap?: PolicyMapName;
  programmed: string[];
  /** Interfaces whose programs left every hook ("veth5"), or one hook ("veth5/ingress"). */
  detached: string[];
  failed: EndpointFailure[];
  updates: Counts;
  deletes: Counts;
  /** nf_rules keys this pass deleted whose table no endpoint uses any more: the table is
   *  retired, and its counters in nf_rule_stats can go (src/reconcile/rule-stats.ts). */
  retiredRuleKeys: Buffer[];
  /** Whether this pass read the maps (rather than being told their content). */
  read: boolean;
  /** The maps now hold exactly the desired content: nothing failed, rolled back or was
   *  left in place, so a next pass may diff against it without reading the maps. */
  exact: boolean;
}
