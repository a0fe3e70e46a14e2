// Gateway liveness for the transparent tunnel: each configured gateway (one per family)
// is probed with its own ARP request / neighbour solicitation out of the uplink every
// PROBE.intervalMs. It counts as answering only after an answer; it stops answering after
// PROBE.misses unanswered probes in a row (one lost request does not flap the tunnel), or
// at once when the uplink is down, has no carrier or no route to it. Any change calls
// onChange, which runs a pass: with the probe timings below the tunnel is off within
// about 1 s of the gateway going silent, well inside the 2 s the README promises.
import type { NativeAddon } from '../datapath/native-api';

export interface GatewayTarget {
  family: 4 | 6;
  address: string;
}

export interface GatewayState extends GatewayTarget {
  answering: boolean;
  /** Why not answering (from the last probe). */
  cause?: string;
  /** When `answering` last changed (ISO time). */
  since: string;
}

export interface ProbeTimings {
  intervalMs: number;
  timeoutMs: number;
  misses: number;
}

export const PROBE: ProbeTimings = { intervalMs: 150, timeoutMs: 250, misses: 2 };

interface Watch {
  key: string;
  states: Map<4 | 6, GatewayState>;
  /** Resolves once every target has a first verdict: an answer, a link problem, or
   *  `misses` probes unanswered. */
  settled: Promise<void>;
  /** Ends the sleep between probes early (a link event on the uplink). */
  wake: Set<() => void>;
  stopped: boolean;
}

export class GatewayMonitor {
  private watch?: Watch;

  constructor(
    private readonly addon: NativeAddon,
    private readonly onChange: (state: GatewayState) => void,
    private readonly timings: ProbeTimings = PROBE,
  ) {}

  /** Probe `targets` out of `uplink` from now on (a different set restarts the probing);
   *  resolves with their states once each has its first verdict. */
  async follow(uplink: string, targets: GatewayTarget[]): Promise<GatewayState[]> {
    const key = JSON.stringify([uplink, targets]);
    if (this.watch?.key !== key) {
      this.stop();
      this.watch = this.start(key, uplink, targets);
    }
    await this.watch.settled;
    return [...this.watch.states.values()];
  }

  /** Probe again now instead of at the next interval. */
  poke(): void {
    for (const wake of this.watch?.wake ?? []) wake();
  }

  stop(): void {
    if (!this.watch) return;
    this.watch.stopped = true;
    this.poke();
    this.watch = undefined;
  }

  private start(key: string, uplink: string, targets: GatewayTarget[]): Watch {
    const w: Watch = { key, states: new Map(), settled: Promise.resolve(), wake: new Set(), stopped: false };
    w.settled = Promise.all(targets.map((t) => new Promise<void>((first) => void this.loop(w, uplink, t, first)))).then(
      () => undefined,
    );
    return w;
  }

  private async loop(w: Watch, uplink: string, target: GatewayTarget, first: () => void): Promise<void> {
    let misses = 0;
    while (!w.stopped) {
      const r = await this.addon
        .gatewayProbe(uplink, target.family, target.address, this.timings.timeoutMs)
        .catch((e: Error) => ({ answered: false, sent: false, cause: e.message }));
      if (w.stopped) break;
      misses = r.answered ? 0 : misses + 1;
      const prev = w.states.get(target.family);
      // Never answered yet: not answering. A link problem decides at once; silence after `misses`.
      const answering = r.answered || (prev?.answering === true && r.sent && misses < this.timings.misses);
      const state: GatewayState = {
        ...target,
        answering,
        cause: r.answered ? undefined : r.cause,
        since: prev?.answering === answering ? prev.since : new Date().toISOString(),
      };
      w.states.set(target.family, state);
      if (prev && prev.answering !== answering) this.onChange(state);
      // The first verdict waits out a lost answer too (a loaded node must not start off).
      if (r.answered || !r.sent || misses >= this.timings.misses) first();
      await new Promise<void>((resume) => {
        const timer = setTimeout(done, this.timings.intervalMs);
        function done(): void {
          clearTimeout(timer);
          w.wake.delete(done);
          resume();
        }
        w.wake.add(done);
      });
    }
    first();
  }
}
