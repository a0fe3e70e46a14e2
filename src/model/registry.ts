// The kinds netfence reads, one line each. From this registry derive the snapshot's
// handlers (snapshot.ts), PolicyRef.kind, the resources the Kubernetes source watches
// (and so the RBAC rules deploy/rbac.yaml grants) and the CRDs deploy/crds ships: adding
// a kind is a parser and one line here. NetfenceConfig is not a kind of the registry: it
// is the agent's configuration, not watched.
import { isAntreaNodePolicy, parseAntreaNodePolicy } from './antrea';
import { parseClusterNetworkPolicy } from './cnp';
import type { Field, FieldError } from './field';
import { parseMultiNetworkPolicy, parseNetworkPolicy, POLICY_FOR_ANNOTATION } from './netpol';
import {
  parseNamespace,
  parseNetworkAttachmentDefinition,
  parseNode,
  parsePod,
  parseService,
  type Meta,
} from './objects';
import type { Snapshot } from './types';

/** What a parser may report about an object it loads: a warning, or (report) an error in
 *  a part that fails closed (the object loads, the error still reaches /readyz). */
export interface LoadContext {
  warn(message: string): void;
  report(err: FieldError): void;
}

/** The snapshot's lists of objects, each filled by the kinds naming it. */
export type Collections = Pick<
  Snapshot,
  'namespaces' | 'pods' | 'nodes' | 'services' | 'networkAttachmentDefinitions' | 'policies'
>;
export type Collection = keyof Collections;

interface KindSpecOf<C extends Collection> {
  /** The version the Kubernetes source watches (and deploy/crds serves). */
  apiVersion: string;
  /** Other versions of the same schema, read as this one (from files, say). */
  alsoApiVersions?: readonly string[];
  /** The kind as the API names it. */
  kind: string;
  /** Plural, as in RBAC rules and URLs. */
  resource: string;
  namespaced: boolean;
  /** A custom resource, whose CRD netfence ships (deploy/crds) or the project that defines
   *  it installs (Multus, Antrea). It may be absent: a 404 on its list is "synced, empty". */
  crd?: 'netfence' | 'external';
  /** A policy kind: it rejects unknown fields (other kinds carry many fields netfence
   *  ignores), and its registry name is its PolicyRef.kind. */
  policy?: true;
  /** The snapshot list this kind's objects go to. */
  collection: C;
  /** Parses the document on its own (no other object is needed: a cache can keep the result
   *  while the document is unchanged); undefined skips it (after a warning). */
  parse(doc: Field, meta: Meta, ctx: LoadContext): Collections[C][number] | undefined;
}

export type KindSpec = { [C in Collection]: KindSpecOf<C> }[Collection];

/** By the name the model gives the kind: the API's, except where netfence reads one API
 *  kind as a narrower one (an Antrea ClusterNetworkPolicy with a node appliedTo is a
 *  NodePolicy). The name is the kind in object identities (objectKey) and errors. */
export const KINDS = {
  Namespace: {
    apiVersion: 'v1',
    kind: 'Namespace',
    resource: 'namespaces',
    namespaced: false,
    collection: 'namespaces',
    parse: parseNamespace,
  },
  Pod: {
    apiVersion: 'v1',
    kind: 'Pod',
    resource: 'pods',
    namespaced: true,
    collection: 'pods',
    parse: parsePod,
  },
  Node: {
    apiVersion: 'v1',
    kind: 'Node',
    resource: 'nodes',
    namespaced: false,
    collection: 'nodes',
    parse: parseNode,
  },
  Service: {
    apiVersion: 'v1',
    kind: 'Service',
    resource: 'services',
    namespaced: true,
    collection: 'services',
    parse: parseService,
  },
  NetworkPolicy: {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    resource: 'networkpolicies',
    namespaced: true,
    policy: true,
    collection: 'policies',
    parse: parseNetworkPolicy,
  },
  ClusterNetworkPolicy: {
    apiVersion: 'policy.networking.k8s.io/v1alpha2',
    // upstream's v1beta1 has v1alpha2's schema
    alsoApiVersions: ['policy.networking.k8s.io/v1beta1'],
    kind: 'ClusterNetworkPolicy',
    resource: 'clusternetworkpolicies',
    namespaced: false,
    crd: 'netfence',
    policy: true,
    collection: 'policies',
    parse: (d, m, ctx) => parseClusterNetworkPolicy(d, m, ctx.report),
  },
  MultiNetworkPolicy: {
    apiVersion: 'k8s.cni.cncf.io/v1beta1',
    kind: 'MultiNetworkPolicy',
    resource: 'multi-networkpolicies',
    namespaced: true,
    crd: 'netfence',
    policy: true,
    collection: 'policies',
    parse: (d, m, ctx) => {
      const p = parseMultiNetworkPolicy(d, m);
      if (!p) ctx.warn(`skipped: no ${POLICY_FOR_ANNOTATION} annotation, the policy applies to no network`);
      return p;
    },
  },
  NetworkAttachmentDefinition: {
    apiVersion: 'k8s.cni.cncf.io/v1',
    kind: 'NetworkAttachmentDefinition',
    resource: 'network-attachment-definitions',
    namespaced: true,
    crd: 'external',
    collection: 'networkAttachmentDefinitions',
    parse: parseNetworkAttachmentDefinition,
  },
  NodePolicy: {
    apiVersion: 'crd.antrea.io/v1beta1',
    kind: 'ClusterNetworkPolicy',
    resource: 'clusternetworkpolicies',
    namespaced: false,
    crd: 'external',
    policy: true,
    collection: 'policies',
    parse: (d, m, ctx) => {
      if (isAntreaNodePolicy(d)) return parseAntreaNodePolicy(d, m, ctx.warn);
      ctx.warn(
        'skipped: not a node policy (no policy-level appliedTo nodeSelector): netfence enforces only node policies of this kind',
      );
      return undefined;
    },
  },
} satisfies Record<string, KindSpec>;

export type KindName = keyof typeof KINDS;
/** The policy kinds by the model's name (PolicyRef.kind, beside 'System'). */
export type PolicyKind = { [K in KindName]: (typeof KINDS)[K] extends { policy: true } ? K : never }[KindName];

export type ReadKind = KindSpec & { name: KindName };

/** The registry as a list, in its order. */
export const READ_KINDS: readonly ReadKind[] = (Object.entries(KINDS) as [KindName, KindSpec][]).map(
  ([name, spec]) => ({ ...spec, name }),
);
