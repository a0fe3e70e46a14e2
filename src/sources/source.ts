// The common shape of every state source (directory, Kubernetes API): something that,
// once started, hands complete, consistent snapshots to one consumer.
import type { Snapshot } from '../model/types';

export interface SnapshotSource {
  /** Begin producing snapshots. The first one arrives only when the source has seen
   *  the whole state once; later ones follow changes (coalesced). Resolves once
   *  started (not necessarily when the first snapshot arrives). `version` names the
   *  content: equal versions mean the same state (the agent reports the version it
   *  enforces, so tools can wait for a change to be enforced). */
  start(onSnapshot: (snapshot: Snapshot, version: string) => void): Promise<void>;
  /** Stop watching; no snapshot is delivered after this resolves. */
  stop(): Promise<void>;
}
