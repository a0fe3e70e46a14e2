// tc attachment of the classifier per interface and hook. TCX links are pinned under
// <root>/links/<ifname>-<dir> so they outlive the agent (restart and kill -9 keep
// enforcement); clsact filters live on the interface itself.
import fs from 'node:fs';
import path from 'node:path';
import { linksDir } from './loader';
import type { NativeAddon, ProgInfo, TcDirection } from './native-api';

const PIN_RE = /^(.+)-(ingress|egress)$/;

export interface EndpointRef {
  ifindex: number;
  ifname: string;
}

/** tc program attachment per interface and hook (TcAttacher in the agent, a fake in tests). */
export interface Attacher {
  attached(ep: EndpointRef, dir: TcDirection): boolean;
  attach(ep: EndpointRef, dir: TcDirection): void;
  detach(ep: EndpointRef, dir: TcDirection): void;
  /** Every interface netfence has programs on (to detach stale ones). */
  list(): EndpointRef[];
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
    return path.join(linksDir(this.root), `${ifname}-${dir}`);
  }

  /** False for an interface gone since it was discovered (pods come and go during a pass). */
  attached(ep: EndpointRef, dir: TcDirection): boolean {
    try {
      return this.addon.tcQuery(ep.ifindex, dir, { linkPin: this.linkPin(ep.ifname, dir) }) !== 0;
    } catch (e) {
      if ((e as { code?: string }).code === 'ENODEV') return false;
      throw e;
    }
  }

  /** Program id at the hook, 0 if none (tests and inspect). */
  programAt(ep: EndpointRef, dir: TcDirection): number {
    return this.addon.tcQuery(ep.ifindex, dir, { linkPin: this.linkPin(ep.ifname, dir) });
  }

  /** A pin left by a gone interface of the same name (a defunct link) is replaced by the
   *  addon; anything else at the pin path is not ours and fails this endpoint. */
  attach(ep: EndpointRef, dir: TcDirection): void {
    this.addon.tcAttach(ep.ifindex, dir, this.progs[dir].fd, { linkPin: this.linkPin(ep.ifname, dir) });
  }

  detach(ep: EndpointRef, dir: TcDirection): void {
    const linkPin = this.linkPin(ep.ifname, dir);
    try {
      if (ep.ifindex !== 0) this.addon.tcDetach(ep.ifindex, dir, { linkPin });
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code !== 'ENODEV' && code !== 'ENOENT') throw e;
    }
    if (fs.existsSync(linkPin)) this.addon.unpin(linkPin);
  }

  list(): EndpointRef[] {
    const dir = linksDir(this.root);
    if (!fs.existsSync(dir)) return [];
    const names = new Set<string>();
    for (const f of fs.readdirSync(dir)) {
      const m = PIN_RE.exec(f);
      if (m) names.add(m[1]);
    }
    // One link dump, not a lookup per pin (each takes the kernel's rtnl lock).
    const ifindexes = new Map(this.addon.linkList().map((l) => [l.name, l.ifindex]));
    return [...names].sort().map((ifname) => ({ ifname, ifindex: ifindexes.get(ifname) ?? 0 }));
  }

  /** Move every hook to new programs (layout migration); the old program runs until each switch. */
  switchPrograms(progs: HookPrograms): void {
    this.progs = progs;
    for (const ep of this.list()) {
      if (ep.ifindex === 0) continue;
      for (const dir of ['ingress', 'egress'] as const) {
        if (this.attached(ep, dir))
          this.addon.tcAttach(ep.ifindex, dir, progs[dir].fd, { linkPin: this.linkPin(ep.ifname, dir) });
      }
    }
  }
}
