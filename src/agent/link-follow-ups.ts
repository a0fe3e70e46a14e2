// Follow-up passes after a new link: the CNI adds the pod route just after the veth, and a
// pod address inside the pod's namespace raises no event here, so passes follow a new link
// for a while. Under pod churn those were most passes; a follow-up is skipped once a good
// pass that started after the event found the link enforced, or did not find it (gone, or
// moved into a pod's namespace).
const LINK_FOLLOWUPS_MS = [0, 50, 200, 1000];

export class LinkFollowUps {
  /** The links the last good pass saw and those it left enforced. */
  private last?: { started: number; seen: ReadonlySet<string>; enforced: ReadonlySet<string> };

  constructor(
    private readonly pass: (reason: string) => void,
    private readonly delaysMs: readonly number[] = LINK_FOLLOWUPS_MS,
  ) {}

  /** Passes after a new link, or after lost link events (no link: all of them run). */
  schedule(reason: string, link?: string): void {
    const at = performance.now();
    for (const ms of this.delaysMs)
      setTimeout(() => {
        if (link === undefined || !this.settled(link, at)) this.pass(reason);
      }, ms);
  }

  /** A good pass, started at `started` (performance.now()), saw the links `seen` and left
   *  `enforced` enforced. */
  passed(started: number, seen: ReadonlySet<string>, enforced: ReadonlySet<string>): void {
    this.last = { started, seen, enforced };
  }

  private settled(link: string, since: number): boolean {
    const last = this.last;
    return last !== undefined && last.started > since && (last.enforced.has(link) || !last.seen.has(link));
  }
}
