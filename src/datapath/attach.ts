// tc attachment of the classifier per interface and hook, in one of two modes:
// - a host interface gets TCX links, pinned at <root>/links/<ifname>-<dir> so they outlive
//   the agent; they run ahead of other tc users' clsact filters. Few, long-lived.
// - a pod's interface gets a clsact direct-action filter at netfence's own handle and
//   priority. Creating a TCX link waits for an RCU grace period under the rtnl lock, and
//   so does deleting a veth that carries one (12-16 ms per hook and +20 ms per veth
//   deletion measured here, against 0.03 ms for the filter): under pod churn that
//   serialises every pod's enforcement behind the others'. The filter lives on the
//   interface (it outlives the agent and goes with the veth); a marker, a pin of its
//   program at <root>/filters/<ifname>-<dir>, records it so a restarted agent finds the
//   interfaces it has hooks on without asking each one.
// Both modes replace a program in place (link update, filter replace) and move a hook
// from one mode to the other by attaching the new one first: no window without a program.
import fs from 'node:fs';
import path from 'node:path';
import { filtersDir, linksDir } from './loader';
import type { NativeAddon, ProgInfo, TcDirection } from './native-api';

const PIN_RE = /^(.+)-(ingress|egress)$/;

export interface EndpointRef {
  ifindex: number;
  ifname: string;
  /** What the interface is (chooses the hook mode); unknown for hooks found by list(). */
  kind?: 'pod' | 'host' | 'secondary';
}

export type HookMode = 'tcx' | 'clsact';

/** Attacher for interfaces of this kind; one of unknown kind keeps the mode it has. */
export function hookModeFor(kind: NonNullable<EndpointRef['kind']>): HookMode {
  return kind === 'host' ? 'tcx' : 'clsact';
}

/** The pins that record a hook of netfence's: its TCX link, its clsact filter's marker. */
export function hookPins(root: string, ifname: string, dir: TcDirection): { link: string; marker: string } {
  const name = `${ifname}-${dir}`;
  return { link: path.join(linksDir(root), name), marker: path.join(filtersDir(root), name) };
}

/** The hooks netfence's pins record (TCX links and filter markers), by interface name. */
export function pinnedHooks(root: string): { ifname: string; dir: TcDirection }[] {
  const hooks = new Map<string, { ifname: string; dir: TcDirection }>();
  for (const dir of [linksDir(root), filtersDir(root)]) {
    for (const f of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
      const m = PIN_RE.exec(f);
      if (m) hooks.set(f, { ifname: m[1], dir: m[2] as TcDirection });
    }
  }
  return [...hooks.values()];
}

/** Removes netfence's hook and its pins; an interface gone (ifindex 0 or ENODEV) leaves
 *  only the pins to drop. */
export function detachHook(addon: NativeAddon, root: string, ep: EndpointRef, dir: TcDirection): void {
  const pins = hookPins(root, ep.ifname, dir);
  try {
    if (ep.ifindex !== 0) addon.tcDetach(ep.ifindex, dir, { linkPin: pins.link });
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code !== 'ENODEV' && code !== 'ENOENT') throw e;
  }
  for (const pin of [pins.link, pins.marker]) if (fs.existsSync(pin)) addon.unpin(pin);
}

/** ifindex of each interface of this netns, by name (one link dump: each lookup takes the
 *  kernel's rtnl lock). */
export function ifindexesByName(addon: NativeAddon): Map<string, number> {
  return new Map(addon.linkList().map((l) => [l.name, l.ifindex]));
}

/** tc program attachment per interface and hook (TcAttacher in the agent, a fake in tests). */
export interface Attacher {
  attached(ep: EndpointRef, dir: TcDirection): boolean;
  attach(ep: EndpointRef, dir: TcDirection): void;
  detach(ep: EndpointRef, dir: TcDirection): void;
  /** Every interface netfence has programs on (to detach stale ones). `ifindexes`: the
   *  caller's link view by name, saving a link dump (absent: ifindex 0, only pins go). */
  list(ifindexes?: ReadonlyMap<string, number>): EndpointRef[];
}

export interface HookPrograms {
  ingress: ProgInfo;
  egress: ProgInfo;
}

export class TcAttacher implements Attacher {
  constructor(
    private readonly addon: NativeAddon,
    private readonly root: string,
    private progs: HookPrograms,
  ) {}

  linkPin(ifname: string, dir: TcDirection): string {
    return hookPins(this.root, ifname, dir).link;
  }

  /** False for an interface gone since it was discovered (pods come and go during a pass),
   *  and for a filter of ours without its marker (an older agent's, or one attached just
   *  before a crash): attaching it again records it. Without a pin the kernel is not asked
   *  (a new pod's interface: a netlink round trip under the rtnl lock saved per hook). */
  attached(ep: EndpointRef, dir: TcDirection): boolean {
    const pins = hookPins(this.root, ep.ifname, dir);
    if (!fs.existsSync(pins.link) && !fs.existsSync(pins.marker)) return false;
    try {
      return this.addon.tcQuery(ep.ifindex, dir, { linkPin: pins.link }) !== 0;
    } catch (e) {
      if ((e as { code?: string }).code === 'ENODEV') return false;
      throw e;
    }
  }

  /** A clsact hook of netfence's (its marker is pinned): whether its filter is there, or
   *  lost (removed behind the agent's back). `none`: no marker, or the interface is gone. */
  markedHook(ep: EndpointRef, dir: TcDirection): 'none' | 'attached' | 'lost' {
    const pins = hookPins(this.root, ep.ifname, dir);
    if (!fs.existsSync(pins.marker)) return 'none';
    try {
      return this.addon.tcQuery(ep.ifindex, dir, { linkPin: pins.link }) !== 0 ? 'attached' : 'lost';
    } catch (e) {
      if ((e as { code?: string }).code === 'ENODEV') return 'none';
      throw e;
    }
  }

  /** Program id at the hook, 0 if none (tests and inspect). */
  programAt(ep: EndpointRef, dir: TcDirection): number {
    return this.addon.tcQuery(ep.ifindex, dir, { linkPin: this.linkPin(ep.ifname, dir) });
  }

  /** A pin left by a gone interface of the same name (a defunct link) is replaced by the
   *  addon; anything else at the link pin path is not ours and fails this endpoint. */
  attach(ep: EndpointRef, dir: TcDirection): void {
    const pins = hookPins(this.root, ep.ifname, dir);
    const mode = ep.kind ? hookModeFor(ep.kind) : fs.existsSync(pins.marker) ? 'clsact' : 'tcx';
    const prog = this.progs[dir].fd;
    const r = this.addon.tcAttach(ep.ifindex, dir, prog, { linkPin: pins.link, forceClsact: mode === 'clsact' });
    // A kernel without TCX gives host interfaces filters too.
    this.mark(pins.marker, r.mode === 'clsact' ? prog : undefined);
  }

  /** Our clsact filter first again, ahead of cls_bpf filters added at its priority after it. */
  moveAhead(ep: EndpointRef, dir: TcDirection): void {
    const pins = hookPins(this.root, ep.ifname, dir);
    const prog = this.progs[dir].fd;
    this.addon.tcMoveAhead(ep.ifindex, dir, prog, { linkPin: pins.link });
    this.mark(pins.marker, prog);
  }

  /** The marker pins the program the filter runs (re-pinned on an upgrade: no old program
   *  is held); none for a TCX link. */
  private mark(marker: string, prog: number | undefined): void {
    if (fs.existsSync(marker)) this.addon.unpin(marker);
    if (prog !== undefined) this.addon.pin(prog, marker);
  }

  detach(ep: EndpointRef, dir: TcDirection): void {
    detachHook(this.addon, this.root, ep, dir);
  }

  list(ifindexes?: ReadonlyMap<string, number>): EndpointRef[] {
    const names = new Set(pinnedHooks(this.root).map((h) => h.ifname));
    if (names.size === 0) return [];
    const byName = ifindexes ?? ifindexesByName(this.addon);
    return [...names].sort().map((ifname) => ({ ifname, ifindex: byName.get(ifname) ?? 0 }));
  }

  /** Move every hook to new programs (layout migration); the old program runs until each switch. */
  switchPrograms(progs: HookPrograms): void {
    this.progs = progs;
    for (const ep of this.list()) {
      if (ep.ifindex === 0) continue;
      for (const dir of ['ingress', 'egress'] as const) if (this.attached(ep, dir)) this.attach(ep, dir);
    }
  }
}
