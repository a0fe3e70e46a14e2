// A file the agent rewrites after each pass (the names file), written off the pass: one
// write at a time, and while one runs only the newest content waits. Under pod churn a
// pass every ~20 ms spent ~4 ms of it serialising and writing that file before the next
// pass could start.
export class LatestWrite<T> {
  private pending?: T;
  private chain: Promise<void> = Promise.resolve();

  /** `write` handles its own errors: a rejected write would leave the chain rejected, and
   *  every later value unwritten. */
  constructor(private readonly write: (value: T) => Promise<void>) {}

  /** Writes `value` after the write in progress, unless a newer value comes first. */
  queue(value: T): void {
    const chained = this.pending !== undefined;
    this.pending = value;
    if (chained) return;
    this.chain = this.chain.then(() => {
      const next = this.pending as T;
      this.pending = undefined;
      return this.write(next);
    });
  }
}
