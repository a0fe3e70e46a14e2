// The pods' part of a compile, kept between compiles: who owns which address under
// which identity (nf_ident_exact), and the first pod of each name. A snapshot that
// differs from the last by a few pods on their primary network only (the usual watch
// event: a pod added, deleted or replaced within existing label sets) is applied as a
// diff of the pod arrays by object identity (one pointer compare per pod, no pass
// over the pods' facts), and the address map is derived from the last one: an
// OverlayMap when pods were deleted, appended or replaced at the same addresses (else
// rebuilt in order), marked with the keys it changed so the reconciler's diff is
// O(changes). Anything else (nodes or namespaces changed, hostNetwork or multi-network
// pods changed, a new or vanished identity key, a shared address, a duplicate pod
// name) takes the full pass, which gives the same result.
import type { NamespaceObj, NodeObj, PodObj, Snapshot } from '../model/types';
import {
  type CollectContext,
  type EncodeIdentity,
  type Collected,
  type IdentityKey,
  type OwnerEntry,
  type PodFacts,
  ownAddresses,
  resolveOwner,
} from './collect';
import { derive } from './output';
import { OverlayMap } from './overlay-map';

/** The pods' part of one compile. */
export interface PodPart {
  /** nf_ident_exact: address key hex -> owner and entry, in the full pass's order
   *  (read-only: it may be an OverlayMap). */
  byAddress: Map<string, OwnerEntry>;
  errors: string[];
  /** The first pod of each "ns/name". */
  pods: ReadonlyMap<string, PodObj>;
}

/** What a full pass left, for diffs against the next snapshot. */
interface Kept extends PodPart {
  podList: readonly PodObj[];
  nodes: readonly NodeObj[];
  namespaces: readonly NamespaceObj[];
  facts: (PodFacts | undefined)[];
  /** The identity set the keys were numbered in. */
  numbering: object;
  /** Entries of nodes, hostNetwork and secondary-network pods (after the pods'). */
  rest: [string, OwnerEntry][];
  pods: Map<string, PodObj>;
}

const plain = (pod: PodObj): boolean => !pod.hostNetwork && pod.networks.length === 0;

/** Are two arrays the same items (by identity) in the same order? */
export function sameItems<T>(a: readonly T[], b: readonly T[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameHexes(a: PodFacts, b: PodFacts): boolean {
  return a.owners.length === b.owners.length && a.owners.every((o, i) => o.hex === b.owners[i].hex);
}

/** The address map of a kept pass: the rest's entries, then the pods' in their order
 *  (when nothing is shared, the order of a full pass). */
function addressMap(rest: [string, OwnerEntry][], facts: readonly (PodFacts | undefined)[]): Map<string, OwnerEntry> {
  const byAddress = new Map(rest);
  for (let i = 0; i < facts.length; i++) {
    const own = facts[i]?.owners;
    if (own) for (let j = 0; j < own.length; j++) byAddress.set(own[j].hex, own[j].resolved!);
  }
  return byAddress;
}

/** A pass's pods and their facts, by position. */
interface LastPass {
  pods: readonly PodObj[];
  facts: readonly (PodFacts | undefined)[];
  /** The same by pod, made when a pod is not where it was. */
  byPod?: Map<PodObj, PodFacts>;
}

export class PodBook {
  private kept?: Kept;
  /** The last pass's facts, for the next full pass to reuse: its pods mostly stand where
   *  they stood (no map of 100k pods to facts made, or kept, while they do). */
  private last?: LastPass;

  /** The facts the last pass made for `pod`, now at `index`. */
  known(pod: PodObj, index: number): PodFacts | undefined {
    const last = this.last;
    if (!last) return undefined;
    if (last.pods[index] === pod) return last.facts[index];
    if (!last.byPod) {
      last.byPod = new Map();
      for (let i = 0; i < last.pods.length; i++) {
        const f = last.facts[i];
        if (f) last.byPod.set(last.pods[i], f);
      }
    }
    return last.byPod.get(pod);
  }

  /** The pods' part from the last full pass and the pods changed since, or undefined
   *  when this snapshot needs a full pass. `numbering`: the current identity set's. */
  update(
    snapshot: Snapshot,
    c: CollectContext,
    numbering: object | undefined,
    encode: EncodeIdentity,
  ): PodPart | undefined {
    const k = this.kept;
    if (!k || k.numbering !== numbering) return undefined;
    if (!sameItems(k.nodes, snapshot.nodes) || !sameItems(k.namespaces, snapshot.namespaces)) return undefined;
    const before = k.podList;
    const now = snapshot.pods;
    // The changed run: between the common head and the common tail.
    const min = Math.min(before.length, now.length);
    let head = 0;
    while (head < min && before[head] === now[head]) head++;
    let tail = 0;
    while (tail < min - head && before[before.length - 1 - tail] === now[now.length - 1 - tail]) tail++;
    if (head === min && before.length === now.length) return k; // the same pods
    const was = before.slice(head, before.length - tail);
    const is = now.slice(head, now.length - tail);
    if (was.length + is.length > Math.max(64, now.length / 4) || !was.every(plain) || !is.every(plain))
      return undefined;
    const wasSet = new Set(was);
    const isSet = new Set(is);
    // The kept facts of the pods that were in the run, new ones for the others.
    const inRun = new Map<PodObj, PodFacts>();
    for (let j = 0; j < was.length; j++) inRun.set(was[j], k.facts[head + j]!);
    const factsOf = (p: PodObj): PodFacts => {
      let f = inRun.get(p);
      if (!f) inRun.set(p, (f = c.facts(p)));
      return f;
    };
    const removed = was.filter((p) => !isSet.has(p)).map(factsOf);
    const added = is.filter((p) => !wasSet.has(p)).map(factsOf);

    // Check everything before changing anything.
    const uses = new Map<IdentityKey, number>();
    const count = (rec: IdentityKey | undefined, d: number): void => {
      if (rec) uses.set(rec, (uses.get(rec) ?? rec.uses) + d);
    };
    const gone = new Set<string>();
    for (const f of removed) {
      count(f.key, -1);
      for (const o of f.owners) {
        if (k.byAddress.get(o.hex) !== o.resolved) return undefined;
        gone.add(o.hex);
      }
      if (k.pods.get(f.name) !== f.pod) return undefined;
    }
    const names = new Set<string>();
    const changed = new Set(gone);
    for (const f of added) {
      const rec = f.primary(c.namespace(f.pod.namespace), c.keys, c.address);
      // A key outside the identity set: the identities change.
      if (rec.numbering !== numbering) return undefined;
      count(rec, +1);
      for (const o of f.owners) {
        if ((k.byAddress.has(o.hex) && !gone.has(o.hex)) || (changed.has(o.hex) && !gone.has(o.hex))) return undefined;
        gone.delete(o.hex);
        changed.add(o.hex);
      }
      if (names.has(f.name) || (k.pods.has(f.name) && !removed.some((r) => r.name === f.name))) return undefined;
      names.add(f.name);
    }
    for (const n of uses.values()) if (n <= 0) return undefined; // a key vanishes

    // Apply: counts, names, facts in snapshot order, and the address map in the full
    // pass's order (the rest, then the pods' primary addresses).
    for (const [rec, n] of uses) rec.uses = n;
    for (const f of removed) k.pods.delete(f.name);
    for (const f of added) {
      k.pods.set(f.name, f.pod);
      for (const o of f.owners) resolveOwner(o, encode);
    }
    const facts = k.facts.slice(0, head).concat(is.map(factsOf), k.facts.slice(k.facts.length - tail));
    // Pods deleted, appended last, or replaced by pods of the same addresses: the
    // entries' order is the last map's with those changes made, as an overlay.
    const inPlace =
      was.length === 0
        ? tail === 0
        : is.length === 0 || (was.length === is.length && was.every((p, i) => sameHexes(factsOf(p), factsOf(is[i]))));
    const edits: [string, OwnerEntry | undefined][] = [...gone].map((hex) => [hex, undefined]);
    for (const f of added) for (const o of f.owners) edits.push([o.hex, o.resolved]);
    let byAddress: Map<string, OwnerEntry> | undefined = inPlace ? OverlayMap.derive(k.byAddress, edits) : undefined;
    if (byAddress instanceof OverlayMap && byAddress.depth > Math.max(1024, byAddress.size / 8))
      byAddress = new Map(byAddress);
    byAddress ??= addressMap(k.rest, facts);
    derive(byAddress, k.byAddress, changed);
    Object.assign(k, { podList: now.slice(), facts, byAddress });
    this.last = { pods: k.podList, facts };
    return k;
  }

  /** The full pass over what collectIdentities found (keys numbered in `numbering`). */
  full(snapshot: Snapshot, collected: Collected, numbering: object, encode: EncodeIdentity): PodPart {
    this.kept = undefined;
    // A copy: the next snapshot's pods are compared with these item by item.
    const podList = snapshot.pods.slice();
    this.last = { pods: podList, facts: collected.facts };
    const { owners, primaryOwners: n } = collected;
    const rest = ownAddresses(owners.slice(n), encode);
    const restEntries = [...rest.byAddress];
    // Kept only when no address is shared between a pod's primary address and anything
    // else: then each primary address has one owner the diff can move, and the map
    // in the order rest, pods is what the full pass gives.
    const byAddress = rest.byAddress;
    let shared = collected.duplicateNames;
    // One probe per address: one that does not grow the map is shared (the map is then
    // dropped for ownAddresses' own).
    for (let i = 0, size = byAddress.size; i < n && !shared; i++) {
      const o = owners[i];
      byAddress.set(o.hex, resolveOwner(o, encode));
      shared = byAddress.size === size;
      size = byAddress.size;
    }
    if (shared) return { ...ownAddresses(owners, encode), pods: collected.pods };
    // (Indexed: see assignIdentities.)
    const { keys, facts } = collected;
    for (let i = 0; i < keys.length; i++) keys[i].uses = 0;
    for (let i = 0; i < facts.length; i++) {
      const key = facts[i]?.key;
      if (key) key.uses++;
    }
    this.kept = {
      byAddress,
      errors: rest.errors,
      pods: collected.pods,
      // Copies: the next snapshot is compared with these item by item.
      podList,
      nodes: snapshot.nodes.slice(),
      namespaces: snapshot.namespaces.slice(),
      facts: collected.facts,
      numbering,
      rest: restEntries,
    };
    return this.kept;
  }
}
