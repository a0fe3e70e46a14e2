// Clsact filters changed behind the agent's back, as the link watcher reports them:
// - removed (`tc qdisc del dev X clsact`, `tc filter del ...`): this finds which of
//   netfence's hooks on that interface are gone (marker pinned, no filter), makes the next
//   pass ask the kernel about them (it re-attaches them as a resync would) and holds them
//   as lost until they are back, so /readyz does not say ready meanwhile;
// - another cls_bpf filter added at our priority (the kernel runs the newest first): ours
//   is moved ahead of it at once, at most once a second per hook (a tool that does the
//   same would otherwise loop with us).
// The agent's own detaches unpin the marker in the same tick as the filter goes: their
// events find nothing lost and cause no pass; its own filters are not reported as added.
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import type { EndpointRef } from '../datapath/attach';
import type { TcDirection, TcHookEvent } from '../datapath/native-api';
import type { KnownHooks } from './known-hooks';

export type HookRepairReason = 'qdisc-deleted' | 'filter-deleted' | 'filter-ahead';

export interface LostHook {
  ifname: string;
  ifindex: number;
  dir: TcDirection;
  reason: HookRepairReason;
  /** When the watcher saw it go (ISO time). */
  since: string;
}

/** What the repairs ask of the attacher (TcAttacher). */
export interface RepairableHooks {
  markedHook(ep: EndpointRef, dir: TcDirection): 'none' | 'attached' | 'lost';
  moveAhead(ep: EndpointRef, dir: TcDirection): void;
}

const REASONS: Record<TcHookEvent['type'], HookRepairReason> = {
  'qdisc-del': 'qdisc-deleted',
  'filter-del': 'filter-deleted',
  'filter-ahead': 'filter-ahead',
};

/** A hook moved ahead is not moved again sooner than this. */
export const MOVE_AHEAD_INTERVAL_MS = 1000;

const hookKey = (ifindex: number, dir: TcDirection): string => `${ifindex}/${dir}`;

export class HookRepairs {
  private readonly lost = new Map<string, LostHook & { at: number }>();
  /** When each hook was last moved ahead, and the moves waiting for the interval to pass. */
  private readonly movedAt = new Map<string, number>();
  private readonly waiting = new Map<string, NodeJS.Timeout>();

  /** `due`: a pass is needed to put lost hooks back. */
  constructor(
    private readonly hooks: RepairableHooks,
    private readonly known: KnownHooks,
    private readonly repairs: Counter<'reason'>,
    private readonly log: Logger,
    private readonly due: (reason: string) => void,
  ) {}

  onEvent(ev: TcHookEvent): void {
    const ep: EndpointRef = { ifindex: ev.ifindex, ifname: ev.ifname };
    for (const dir of ev.dirs) {
      if (ev.type === 'filter-ahead') this.moveAhead(ep, dir);
      // A deletion that frees priority 1 for a hook still lost (its attach failed) counts too.
      else if (this.markLost(ep, dir, REASONS[ev.type])) this.due(`hook lost on ${ep.ifname}`);
    }
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
    return this.lost.has(hookKey(ifindex, 'ingress')) || this.lost.has(hookKey(ifindex, 'egress'));
  }

  close(): void {
    for (const t of this.waiting.values()) clearTimeout(t);
    this.waiting.clear();
  }

  /** Whether a hook of ours is gone (the next pass asks the kernel about it again). */
  private markLost(ep: EndpointRef, dir: TcDirection, reason: HookRepairReason): boolean {
    if (this.hooks.markedHook(ep, dir) !== 'lost') return false;
    this.known.forget(ep, dir);
    const key = hookKey(ep.ifindex, dir);
    if (!this.lost.has(key)) {
      this.lost.set(key, { ...ep, dir, reason, since: new Date().toISOString(), at: Date.now() });
      this.log.warn(
        { ifname: ep.ifname, ifindex: ep.ifindex, dir, reason },
        `tc ${dir} filter of ${ep.ifname} removed behind the agent's back (${reason}): attaching it again`,
      );
    }
    return true;
  }

  private moveAhead(ep: EndpointRef, dir: TcDirection): void {
    const key = hookKey(ep.ifindex, dir);
    const now = Date.now();
    for (const [k, at] of this.movedAt) if (now - at >= MOVE_AHEAD_INTERVAL_MS) this.movedAt.delete(k);
    const at = this.movedAt.get(key);
    if (at !== undefined) {
      if (!this.waiting.has(key)) {
        const retry = (): void => {
          this.waiting.delete(key);
          this.moveAhead(ep, dir);
        };
        this.waiting.set(key, setTimeout(retry, at + MOVE_AHEAD_INTERVAL_MS - now));
      }
      return;
    }
    if (this.hooks.markedHook(ep, dir) !== 'attached') return;
    this.movedAt.set(key, now);
    try {
      this.hooks.moveAhead(ep, dir);
    } catch (e) {
      this.log.error(
        { ifname: ep.ifname, dir },
        `move tc ${dir} filter of ${ep.ifname} ahead: ${(e as Error).message}`,
      );
      if (this.markLost(ep, dir, 'filter-ahead')) this.due(`hook lost on ${ep.ifname}`);
      return;
    }
    this.repairs.inc({ reason: 'filter-ahead' });
    this.log.warn(
      { ifname: ep.ifname, ifindex: ep.ifindex, dir, reason: 'filter-ahead' },
      `tc ${dir}: another cls_bpf filter was added ahead of netfence's on ${ep.ifname}: netfence's runs first again`,
    );
  }
}
