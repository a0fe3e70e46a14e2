// A pass costs O(changes), not O(map entries): the reconciler remembers what the last
// exact pass left in the maps (the desired state it applied) and diffs the next desired
// state against that, so nothing is read back. Unchanged table maps are the same
// instances from the Compiler, which diffMap skips at once. The maps are read only when
// memory cannot stand for them: at the first pass (pins adopted after a restart), after
// verify() (the periodic resync repairs changes made behind the agent's back), and after
// a pass that failed or left anything other than the desired content (the maps are then
// unknown).
import type { CompiledEndpoint, CompileResult, DesiredMaps } from '../compile/output';
import type { Attacher } from '../datapath/attach';
import { reconcile } from './apply';
import type { ReconcileReport } from './report';
import type { MapIO } from './mapio';
import type { ActualMaps } from './plan';

export class Reconciler {
  /** The maps' content after the last pass, when it is known exactly. */
  private known?: ActualMaps;
  private verifyNext = true;

  constructor(
    private readonly io: MapIO,
    private readonly attacher: Attacher,
  ) {}

  /** The next pass reads the maps (drift repair). */
  verify(): void {
    this.verifyNext = true;
  }

  /** `isolation`: CompileResult.isolation, the tables endpoints fall back to; `ifindexes`:
   *  the pass's link view by name. */
  apply(
    desired: DesiredMaps,
    endpoints: readonly CompiledEndpoint[],
    isolation?: CompileResult['isolation'],
    ifindexes?: ReadonlyMap<string, number>,
  ): ReconcileReport {
    const known = this.verifyNext ? undefined : this.known;
    this.verifyNext = false;
    // Unknown until this pass proves exact (a throw leaves it unknown too).
    this.known = undefined;
    const report = reconcile(this.io, this.attacher, desired, endpoints, { known, isolation, ifindexes });
    if (report.exact) this.known = desired;
    return report;
  }
}
