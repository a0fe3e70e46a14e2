// Passes asked for in one turn of the event loop (timers due together, a burst of link
// events) share one pass, run after that turn's I/O, so the netlink events already queued
// are read first. Under pod churn, timers due together each ran a whole pass while the link
// watcher's socket overflowed (and every overflow costs a resync of every hook).
export class PassRequests {
  /** The first reason asked for since the last pass started. */
  private requested?: string;

  constructor(private readonly pass: (reason: string) => void) {}

  request(reason: string): void {
    if (this.requested !== undefined) return;
    this.requested = reason;
    setImmediate(() => {
      const r = this.requested!;
      this.requested = undefined;
      this.pass(r);
    });
  }
}
