// Per-object last good state. A source snapshot drops every rejected object; enforcing it
// as is would remove a policy edited into an invalid one and open the traffic it denied.
// LastGood remembers the last valid version of every object (by objectKey) and merges
// each new snapshot: a rejected object keeps its last valid version (one that never had
// one stays out; so do duplicated copies, which are all rejected), a file with an error
// that names no object (YAML syntax, a kind or apiVersion netfence does not read) keeps
// the objects it held, and everything else follows the new snapshot, deletions too.
// The store converts to and from plain data (LastGoodData) so the agent can keep it across
// restarts: a new agent must not open what a rejected object's last valid version denied.
import { CONFIG_OBJECT_KEY, emptySnapshot, objectKey, withSystemPolicies } from './snapshot';
import type { Snapshot } from './types';

/** What LastGood keeps of a snapshot: its objects. */
type Objects = Omit<Snapshot, 'errors' | 'warnings' | 'origins'>;

interface Entry {
  file?: string;
  /** Puts this version of the object back into a snapshot. */
  restore(into: Objects): void;
}

export interface Merged {
  snapshot: Snapshot;
  /** Objects enforced at their last valid version, not at the (rejected) current one. */
  kept: string[];
}

/** The valid objects of a snapshot by identity (the system policy follows the config). */
function entries(s: Snapshot): Map<string, Entry> {
  const out = new Map<string, Entry>();
  const put = <T>(items: readonly T[], key: (o: T) => string, list: (into: Objects) => T[]): void => {
    for (const o of items) {
      const k = key(o);
      out.set(k, { file: s.origins?.get(k)?.file, restore: (into) => list(into).push(o) });
    }
  };
  put(
    s.namespaces,
    (n) => objectKey('Namespace', undefined, n.name),
    (t) => t.namespaces,
  );
  put(
    s.pods,
    (p) => objectKey('Pod', p.namespace, p.name),
    (t) => t.pods,
  );
  put(
    s.nodes,
    (n) => objectKey('Node', undefined, n.name),
    (t) => t.nodes,
  );
  put(
    s.services,
    (x) => objectKey('Service', x.namespace, x.name),
    (t) => t.services,
  );
  put(
    s.networkAttachmentDefinitions,
    (x) => objectKey('NetworkAttachmentDefinition', x.namespace, x.name),
    (t) => t.networkAttachmentDefinitions,
  );
  const policies = s.policies.filter((p) => p.ref.kind !== 'System');
  put(
    policies,
    (p) => objectKey(p.ref.kind, p.ref.namespace, p.ref.name),
    (t) => t.policies,
  );
  const config = s.origins?.get(CONFIG_OBJECT_KEY);
  if (config) {
    const value = s.config;
    out.set(CONFIG_OBJECT_KEY, { file: config.file, restore: (into) => (into.config = value) });
  }
  return out;
}

/** The store as plain (JSON) data: its objects as snapshot lists, their files in origins;
 *  config is one of them only when origins names it. */
export type LastGoodData = Objects & { origins: Record<string, { file?: string }> };

export class LastGood {
  private good = new Map<string, Entry>();
  /** Counts merges: the store can only have changed when this moved. */
  private merges = 0;

  get revision(): number {
    return this.merges;
  }

  static fromData(data: LastGoodData): LastGood {
    const store = new LastGood();
    store.good = entries({ ...data, origins: new Map(Object.entries(data.origins)), errors: [], warnings: [] });
    return store;
  }

  toData(): LastGoodData {
    const { errors: _e, warnings: _w, ...out } = emptySnapshot();
    const data: LastGoodData = { ...out, origins: {} };
    for (const [key, e] of this.good) {
      e.restore(data);
      data.origins[key] = e.file !== undefined ? { file: e.file } : {};
    }
    return data;
  }

  /** The snapshot to enforce for `s`; `s` becomes the last good state of its valid objects. */
  merge(s: Snapshot): Merged {
    this.merges++;
    const fresh = entries(s);
    const present = new Set([...fresh.keys(), ...(s.origins?.keys() ?? [])]);
    const rejected = new Set(s.errors.flatMap((e) => (e.key !== undefined ? [e.key] : [])));
    const unreadable = new Set(s.errors.flatMap((e) => (e.key === undefined && e.file !== undefined ? [e.file] : [])));
    const kept = [...this.good].filter(
      ([key, e]) => !present.has(key) && (rejected.has(key) || (e.file !== undefined && unreadable.has(e.file))),
    );
    this.good = new Map([...fresh, ...kept]);
    if (kept.length === 0) return { snapshot: s, kept: [] };

    const origins = new Map(s.origins);
    const out: Snapshot = {
      ...s,
      namespaces: [...s.namespaces],
      pods: [...s.pods],
      nodes: [...s.nodes],
      services: [...s.services],
      networkAttachmentDefinitions: [...s.networkAttachmentDefinitions],
      policies: [...s.policies],
      origins,
    };
    for (const [key, e] of kept) {
      e.restore(out);
      origins.set(key, e.file !== undefined ? { file: e.file } : {});
    }
    out.policies = withSystemPolicies(out.policies, out.config);
    return { snapshot: out, kept: kept.map(([key]) => key) };
  }
}
