// Clsact filters removed behind the agent's back (`tc qdisc del dev X clsact`, `tc filter
// del ...`): the link watcher reports the tc deletion, this finds which of netfence's hooks
// on that interface are gone (marker pinned, no filter), makes the next pass ask the kernel
// about them (it re-attaches them as a resync would) and holds them as lost until they are
// back, so /readyz does not say ready meanwhile. The agent's own detaches unpin the marker
// in the same tick as the filter goes: their events find nothing lost and cause no pass.
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import type { EndpointRef } from '../datapath/attach';
import type { TcDeleteEvent, TcDirection } from '../datapath/native-api';
import type { KnownHooks } from './known-hooks';

export type HookLossReason = 'qdisc-deleted' | 'filter-deleted';

export interface LostHook {
  ifname: string;
  ifindex: number;
  dir: TcDirection;
  reason: HookLossReason;
  /** When the watcher saw it go (ISO time). */
  since: string;
}

/** What the repairs ask of the attacher (TcAttacher.markedHook). */
export interface MarkedHooks {
  markedHook(ep: EndpointRef, dir: TcDirection): 'none' | 'attached' | 'lost';
}

const REASONS: Record<TcDeleteEvent['type'], HookLossReason> = {
  'qdisc-del': 'qdisc-deleted',
  'filter-del': 'filter-deleted',
};

const lostKey = (ifindex: number, dir: TcDirection): string => `${ifindex}/${dir}`;

export class HookRepairs {
  private readonly lost = new Map<string, LostHook & { at: number }>();

  constructor(
    private readonly hooks: MarkedHooks,
    private readonly known: KnownHooks,
    private readonly repairs: Counter<'reason'>,
    private readonly log: Logger,
  ) {}

  /** Whether the deletion took any hook of ours (then a pass is due to put it back). A
   *  deletion that frees priority 1 for a hook still lost (its attach failed) counts too. */
  noticed(ev: TcDeleteEvent): boolean {
    const ep: EndpointRef = { ifindex: ev.ifindex, ifname: ev.ifname };
    let any = false;
    for (const dir of ev.dirs) {
      if (this.hooks.markedHook(ep, dir) !== 'lost') continue;
      any = true;
      this.known.forget(ep, dir);
      const key = lostKey(ep.ifindex, dir);
      if (this.lost.has(key)) continue;
      const reason = REASONS[ev.type];
      this.lost.set(key, { ...ep, dir, reason, since: new Date().toISOString(), at: Date.now() });
      this.log.warn(
        { ifname: ep.ifname, ifindex: ep.ifindex, dir, reason },
        `tc ${dir} filter of ${ep.ifname} removed behind the agent's back (${reason}): attaching it again`,
      );
    }
    return any;
  }

  /** After a pass: hooks back in place are counted and logged; those no longer ours (the
   *  endpoint went, or its interface) are forgotten; the others stay lost. */
  settle(): void {
    for (const [key, h] of this.lost) {
      const state = this.hooks.markedHook(h, h.dir);
      if (state === 'lost') continue;
      this.lost.delete(key);
      if (state === 'none') continue;
      this.repairs.inc({ reason: h.reason });
      this.log.info(
        { ifname: h.ifname, ifindex: h.ifindex, dir: h.dir, reason: h.reason, ms: Date.now() - h.at },
        `tc ${h.dir} filter of ${h.ifname} repaired`,
      );
    }
  }

  /** The hooks seen go and not back yet (listed on /readyz, which is 503 meanwhile). */
  list(): LostHook[] {
    return [...this.lost.values()].map(({ at: _at, ...h }) => h);
  }

  isLost(ifindex: number): boolean {
    return this.lost.has(lostKey(ifindex, 'ingress')) || this.lost.has(lostKey(ifindex, 'egress'));
  }
}
