// One pass over a snapshot's pods and nodes: who owns which address under which
// identity key, and the identity set those keys make. This pass is the part of a
// compile that is O(pods) even when nothing changed, so it works on cached per-pod
// facts and interned keys: an unchanged pod costs a few property reads, no hashing.
import type { NodeObj, PodObj, Snapshot } from '../model/types';
import { nodeOfPod } from '../selectors/resolve';
import { type Numbered, idHash, maskedHash, probeIds } from './hash';
import {
  type AddressOwner,
  type Draft,
  type Identity,
  type Unnumbered,
  type NamespaceInfo,
  type PartInterner,
  type PodPart,
  nodeDraft,
  nodeKey,
  podDraft,
  podKey,
  podPart,
} from './identities';

/** An identity key, interned: every pod and node with that key shares the record. */
export class IdentityKey implements Numbered {
  private made?: Unnumbered;
  /** Its masked id hash, once computed (-1 before). */
  h = -1;
  /** The interner epoch it belongs to (a record from an older epoch is re-interned). */
  epoch: number;
  /** The last pass that met it. */
  pass = 0;
  /** Its id in the identity set `numbering` (see assignIdentities). */
  id = 0;
  numbering?: object;
  /** Pods (not hostNetwork) with this primary key, as PodBook counts them. */
  uses = 0;
  /** Its nf_ident_exact value as last encoded, and the id it encodes. */
  private value?: Buffer;
  private valueId = 0;

  constructor(
    readonly key: string,
    private make: ((key: string) => Unnumbered) | undefined,
    epoch: number,
  ) {
    this.epoch = epoch;
  }

  /** Its identity's content, made once, from the first pod or node met with the key
   *  (any other gives the same, but for the stand-in endpoint selectors never look at). */
  draft(): Unnumbered {
    if (!this.made) {
      this.made = this.make!(this.key);
      this.make = undefined; // what it captured (a pod, its facts) is no longer held
    }
    return this.made;
  }

  /** Its nf_ident_exact value under its id: one Buffer shared by all its addresses. */
  encoded(encode: EncodeIdentity): Buffer {
    if (!this.value || this.valueId !== this.id) {
      this.value = encode(this.id);
      this.valueId = this.id;
    }
    return this.value;
  }
}

/** Interned keys, kept across passes; keys no pass met lately are swept now and then. */
export class KeyInterner {
  private readonly table = new Map<string, IdentityKey>();
  private epoch = 0;
  private pass = 0;
  private met = 0;

  /** Start a pass (after a sweep, when the table holds much more than the last pass met). */
  nextPass(): void {
    if (this.table.size > 2 * this.met + 64) {
      this.epoch++;
      for (const [key, r] of this.table) {
        if (r.pass === this.pass) r.epoch = this.epoch;
        else this.table.delete(key);
      }
    }
    this.pass++;
    this.met = 0;
  }

  /** `draft` makes the key's identity content from the key. */
  intern(key: string, draft: (key: string) => Unnumbered): IdentityKey {
    let r = this.table.get(key);
    if (!r) this.table.set(key, (r = new IdentityKey(key, draft, this.epoch)));
    return r;
  }

  /** Is a record kept from an earlier pass still the interned one? */
  current(r: IdentityKey): boolean {
    return r.epoch === this.epoch;
  }

  /** Meet a key in this pass: true the first time. */
  meet(r: IdentityKey): boolean {
    if (r.pass === this.pass) return false;
    r.pass = this.pass;
    this.met++;
    return true;
  }
}

/** An address with its owner's identity key; `resolved` keeps what it last resolved
 *  to (reused while the key has the same id). */
/** An address in its map key form (16 bytes) and that key's hex. */
export interface Address {
  hex: string;
  key: Buffer;
}

export interface Owner extends Address {
  ip: string;
  rec: IdentityKey;
  pod?: PodObj;
  node?: string;
  resolved?: OwnerEntry;
}

/** An address owner that is also its nf_ident_exact entry (key: the address, value:
 *  the identity), so the address map is that map's content as it stands. */
export type OwnerEntry = AddressOwner & { key: Buffer; value: Buffer };

/** `{ ip, ...address(ip), rec, pod, node }`, written out (a spread is slow at 100k). */
function owner(
  ip: string,
  address: (ip: string) => Address,
  rec: IdentityKey,
  pod: PodObj | undefined,
  node: string | undefined,
): Owner {
  const { key, hex } = address(ip);
  return { ip, key, hex, rec, pod, node, resolved: undefined };
}

/** What the compiler derives from one pod object. A Compiler keeps one per pod object,
 *  so an unchanged pod costs a lookup. */
export class PodFacts {
  readonly part: PodPart;
  // Its primary key and addresses under the namespace labels they were made with
  // (plain fields: this is read for every pod of every compile).
  private nsText?: string;
  private rec?: IdentityKey;
  private owned: readonly Owner[] = [];
  private fullName?: string;

  /** `parts`: interns pod parts (pods of equal labels and ports share one). */
  constructor(
    readonly pod: PodObj,
    parts?: PartInterner,
  ) {
    this.part = podPart(pod, parts);
  }

  /** The key primary() last returned. */
  get key(): IdentityKey | undefined {
    return this.rec;
  }

  /** Its primary addresses, owned under the key primary() last returned. */
  get owners(): readonly Owner[] {
    return this.owned;
  }

  /** "ns/name", as endpoints name pods. */
  get name(): string {
    return (this.fullName ??= [this.pod.namespace, this.pod.name].join('/'));
  }

  /** Its primary identity key in namespace `ns` (and `owners` its addresses under it). */
  primary(ns: NamespaceInfo, keys: KeyInterner, address: (ip: string) => Address): IdentityKey {
    let rec = this.rec;
    if (this.nsText !== ns.keyText || !rec || !keys.current(rec)) {
      const { pod, part } = this;
      const made = keys.intern(podKey(pod, ns, part), (key) => podDraft(pod, ns, undefined, part, key));
      this.nsText = ns.keyText;
      this.rec = rec = made;
      this.owned = pod.ips.map((ip) => owner(ip, address, made, pod, pod.nodeName));
    }
    return rec;
  }
}

/** Every address owner, the identity keys met (first-use order), and the first pod
 *  of each name. */
export interface Collected {
  keys: IdentityKey[];
  /** The primary addresses of pods (not hostNetwork) first, then the others. */
  owners: Owner[];
  /** How many of `owners` are pods' primary addresses. */
  primaryOwners: number;
  /** Per snapshot pod, its facts (undefined for a hostNetwork pod). */
  facts: (PodFacts | undefined)[];
  pods: Map<string, PodObj>;
  /** Two pods of one "ns/name". */
  duplicateNames: boolean;
}

export interface CollectContext {
  keys: KeyInterner;
  namespace: (name: string) => NamespaceInfo;
  /** New facts of a pod. */
  facts: (pod: PodObj) => PodFacts;
  /** The facts the last pass made for the pod at `index`, if it was there (see PodBook). */
  known: (pod: PodObj, index: number) => PodFacts | undefined;
  address: (ip: string) => Address;
}

/** A pod's primary identity key, from new facts (asked for the node's own pods only: a
 *  few interned lookups each, cheaper than a map from every pod to its facts). */
export function primaryKey(pod: PodObj, c: CollectContext): IdentityKey {
  return c.facts(pod).primary(c.namespace(pod.namespace), c.keys, c.address);
}

export function collectIdentities(snapshot: Snapshot, c: CollectContext): Collected {
  c.keys.nextPass();
  const keys: Collected['keys'] = [];
  const owners: Owner[] = [];
  // Most pods share a label set with an earlier one: only the first gives its draft.
  const meet = (rec: IdentityKey): IdentityKey => {
    if (c.keys.meet(rec)) keys.push(rec);
    return rec;
  };
  const meetNode = (node: NodeObj): IdentityKey => meet(c.keys.intern(nodeKey(node), (key) => nodeDraft(node, key)));

  // Address owners in the reference's lookup order: pods, nodes, hostNetwork pods
  // (their node; a stand-in node when the node is unknown), then secondary networks.
  // One pass over the pods (the hot loop: indexed, no per-pod allocation).
  const hostPods: PodObj[] = [];
  const multiPods: PodFacts[] = [];
  let pods = new Map<string, PodObj>();
  const facts: Collected['facts'] = [];
  // One probe per pod (set, not has + set): names that do not grow the map are
  // duplicates, and the map is then made again below, first pod of a name first.
  for (let index = 0; index < snapshot.pods.length; index++) {
    const pod = snapshot.pods[index];
    if (pod.hostNetwork) {
      hostPods.push(pod);
      facts.push(undefined);
      pods.set(`${pod.namespace}/${pod.name}`, pod);
      continue;
    }
    const f = c.known(pod, index) ?? c.facts(pod);
    if (pod.networks.length) multiPods.push(f);
    facts.push(f);
    pods.set(f.name, pod);
    meet(f.primary(c.namespace(pod.namespace), c.keys, c.address));
    const own = f.owners;
    for (let i = 0; i < own.length; i++) owners.push(own[i]);
  }
  const duplicateNames = pods.size !== snapshot.pods.length;
  if (duplicateNames) pods = firstByName(snapshot.pods);
  const primaryOwners = owners.length;
  for (const node of snapshot.nodes) {
    const rec = meetNode(node);
    for (const ip of node.addresses) owners.push(owner(ip, c.address, rec, undefined, node.name));
  }
  for (const pod of hostPods) {
    const node = nodeOfPod(snapshot, pod);
    if (!node) continue;
    const rec = meetNode(node);
    for (const ip of pod.ips) owners.push(owner(ip, c.address, rec, undefined, node.name));
  }
  for (const { pod, part } of multiPods) {
    const ns = c.namespace(pod.namespace);
    for (const net of pod.networks) {
      const rec = meet(
        c.keys.intern(podKey(pod, ns, part, net.network), (key) => podDraft(pod, ns, net.network, part, key)),
      );
      for (const ip of net.ips) owners.push(owner(ip, c.address, rec, pod, pod.nodeName));
    }
  }
  return { keys, owners, primaryOwners, facts, pods, duplicateNames };
}

function firstByName(list: readonly PodObj[]): Map<string, PodObj> {
  const out = new Map<string, PodObj>();
  for (const pod of list) {
    const name = `${pod.namespace}/${pod.name}`;
    if (!out.has(name)) out.set(name, pod);
  }
  return out;
}

/** Identities with their ids; a function of the set of keys only. */
export class IdentitySet {
  private index?: Map<number, Identity>;

  constructor(
    /** By id. */
    readonly list: Identity[],
    /** Stamped on every key it numbered. */
    readonly numbering: object,
  ) {}

  /** Made on first use: only egress named ports look identities up by id. */
  get byId(): ReadonlyMap<number, Identity> {
    if (!this.index) {
      // A loop, not a map of [id, x] pairs: 100k pairs are garbage the size of the set.
      this.index = new Map();
      for (const i of this.list) this.index.set(i.id, i);
    }
    return this.index;
  }
}

export function assignIdentities(keys: Collected['keys']): IdentitySet {
  // Indexed loops over the 100k keys: a for-of run before it is optimized allocates a
  // result object per step (MBs of garbage in a first compile).
  for (let i = 0; i < keys.length; i++) {
    const rec = keys[i];
    if (rec.h < 0) rec.h = maskedHash('identity', idHash('identity', rec.key));
  }
  const sorted = keys.slice();
  probeIds(sorted, 'identity');
  const numbering = {};
  const list: Identity[] = sorted.map((rec) => {
    rec.numbering = numbering;
    // The draft is the identity, unless an earlier set gave it another id.
    const d = rec.draft();
    if (d.id !== 0 && d.id !== rec.id) return identityOf(rec.id, d);
    d.id = rec.id;
    return d;
  });
  list.sort((a, b) => a.id - b.id);
  return new IdentitySet(list, numbering);
}

/** `{ id, ...d }`, written out: a spread copies through a generic path, slow at 100k. */
function identityOf(id: number, d: Draft): Identity {
  const { key, endpoint, namespaceLabels, labels, namedPorts, description } = d;
  return d.network === undefined
    ? { id, key, endpoint, namespaceLabels, labels, namedPorts, description }
    : { id, key, endpoint, network: d.network, namespaceLabels, labels, namedPorts, description };
}

/** Does `set` number exactly the keys met (so its ids hold for them)? */
export function numbersExactly(set: IdentitySet, keys: Collected['keys']): boolean {
  return set.list.length === keys.length && keys.every((k) => k.numbering === set.numbering);
}

/** Makes the value of an nf_ident_exact entry (the identity id). */
export type EncodeIdentity = (identity: number) => Buffer;

/** An owner's nf_ident_exact entry under its key's current id (the last one kept
 *  while the id is the same). */
export function resolveOwner(o: Owner, encode: EncodeIdentity): OwnerEntry {
  const identity = o.rec.id;
  if (o.resolved?.identity !== identity)
    o.resolved = { ip: o.ip, identity, pod: o.pod, node: o.node, key: o.key, value: o.rec.encoded(encode) };
  return o.resolved;
}

/** Address (key hex) -> owner, with ids from the set that numbered the keys; a
 *  second owner of an address with another identity is an error. */
export function ownAddresses(
  owners: Owner[],
  encode: EncodeIdentity,
): { byAddress: Map<string, OwnerEntry>; errors: string[] } {
  const byAddress = new Map<string, OwnerEntry>();
  const errors: string[] = [];
  for (const o of owners) {
    const prev = byAddress.get(o.hex);
    if (prev) {
      // Node addresses shared with hostNetwork pods are expected; anything else is a conflict.
      if (prev.identity !== o.rec.id)
        errors.push(`assign identity ${o.ip}: address already owned by ${ownerName(prev)}`);
      continue;
    }
    byAddress.set(o.hex, resolveOwner(o, encode));
  }
  return { byAddress, errors };
}

function ownerName(o: AddressOwner): string {
  return o.pod ? `pod ${o.pod.namespace}/${o.pod.name}` : `node ${o.node ?? '?'}`;
}
