// The rp_filter an uplink had before the transparent tunnel loosened it to 2 (replies of
// tunnelled flows come back in through the uplink with a pod source address, which strict
// mode drops). Kept beside the names file, /run/netfence/<hash of the bpffs root>/
// rp-filter.json, so that turning the tunnel off, moving it to another uplink, or
// `netfence cleanup` puts the value back; a reboot resets the sysctl and /run alike.
// A value someone changed after netfence set 2 is theirs: it is left as it is.
import fs from 'node:fs';
import path from 'node:path';
import { RP_FILTER_LOOSE, rpFilterSysctl } from '../redirect/tunnel';
import { DEFAULT_RUN_DIR, namesFilePath } from './names-file';
import { writeFileAtomic } from './write-atomic';

export function rpFilterRecordPath(bpffsRoot: string, runDir = DEFAULT_RUN_DIR): string {
  return path.join(path.dirname(namesFilePath(bpffsRoot, runDir)), 'rp-filter.json');
}

/** Interface name -> its rp_filter before netfence set it. */
type Saved = Record<string, string>;

/** A way to put an interface's rp_filter back, for the caller to run or print. */
export interface RpFilterRestore {
  ifname: string;
  value: string;
  run(): void;
}

export class RpFilterRecord {
  /** What this instance left in the record: the uplink recorded, or none (null); unknown
   *  until the first call. A pass runs every time something changes: it need not read the
   *  file again for what it knows. */
  private recorded: string | null | undefined;

  constructor(
    readonly file: string,
    private readonly procRoot = '/proc',
  ) {}

  private sysctl(ifname: string): string {
    return rpFilterSysctl(this.procRoot, ifname);
  }

  /** The record; none (no file) is empty. An unreadable record is empty too: the values
   *  in it cannot be trusted, and the sysctls stay as they are. */
  read(): Saved {
    try {
      const saved = JSON.parse(fs.readFileSync(this.file, 'utf8')) as unknown;
      if (typeof saved !== 'object' || saved === null || Array.isArray(saved)) return {};
      return Object.fromEntries(
        Object.entries(saved).filter(([k, v]) => /^[^/\0]+$/.test(k) && typeof v === 'string' && /^[0-2]$/.test(v)),
      );
    } catch {
      return {};
    }
  }

  /** Before the tunnel loosens `uplink`: records its value unless recorded already (a
   *  restarted agent finds 2, its own), and puts back any other uplink recorded before.
   *  An uplink without the sysctl (no such interface) is left to the tunnel to report. */
  async remember(uplink: string): Promise<void> {
    if (this.recorded === uplink) return;
    const saved = this.read();
    const others = Object.keys(saved).filter((ifname) => ifname !== uplink);
    for (const r of this.restores(saved, uplink)) r.run();
    for (const ifname of others) delete saved[ifname];
    let changed = others.length > 0;
    if (!(uplink in saved)) {
      try {
        saved[uplink] = fs.readFileSync(this.sysctl(uplink), 'utf8').trim();
        changed = true;
      } catch {
        // no such interface
      }
    }
    if (changed) await writeFileAtomic(this.file, `${JSON.stringify(saved)}\n`);
    if (uplink in saved) this.recorded = uplink;
  }

  /** Puts every recorded interface back and forgets the record (the tunnel is off). */
  restoreAll(): void {
    if (this.recorded === null) return;
    if (fs.existsSync(this.file)) {
      for (const r of this.restores(this.read())) r.run();
      fs.rmSync(this.file, { force: true });
    }
    this.recorded = null;
  }

  /** The recorded interfaces (but `except`) whose value is still netfence's: the others
   *  are gone, or someone set them since. */
  restores(saved: Saved = this.read(), except?: string): RpFilterRestore[] {
    return Object.entries(saved).flatMap(([ifname, value]) => {
      if (ifname === except) return [];
      let now: string;
      try {
        now = fs.readFileSync(this.sysctl(ifname), 'utf8').trim();
      } catch {
        return [];
      }
      if (now !== RP_FILTER_LOOSE || value === RP_FILTER_LOOSE) return [];
      return [{ ifname, value, run: () => fs.writeFileSync(this.sysctl(ifname), value) }];
    });
  }
}
