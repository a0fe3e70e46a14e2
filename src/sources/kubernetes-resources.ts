// What the Kubernetes API source watches (every kind of the model's registry,
// src/model/registry.ts), and how each resource is listed. The RBAC manifest
// (deploy/rbac.yaml) must grant get/list/watch on exactly these; a unit test derives the
// expected rules from WATCHED_RESOURCES.
import { CoreV1Api, CustomObjectsApi, KubeConfig, NetworkingV1Api } from '@kubernetes/client-node';
// The typed list calls hand back model instances whose property names differ from the
// wire form in places (NetworkPolicyIngressRule.from becomes `_from`); the generated
// serializer turns them back into the JSON the directory source parses. It is not
// re-exported from the package index.
import { ObjectSerializer } from '@kubernetes/client-node/dist/gen/models/ObjectSerializer.js';
import { groupOf } from '../model/kinds';
import { READ_KINDS } from '../model/registry';

export interface WatchedResource {
  group: string; // '' = core
  version: string;
  resource: string; // plural, as in RBAC rules and URLs
  kind: string;
  namespaced: boolean;
  /** CRDs that may not be installed: a 404 counts as "synced, empty". */
  optional: boolean;
}

/** Every kind of the model's registry, as a resource to list and watch. */
export const WATCHED_RESOURCES: readonly WatchedResource[] = READ_KINDS.map((k) => ({
  group: groupOf(k.apiVersion),
  version: k.apiVersion.slice(k.apiVersion.lastIndexOf('/') + 1),
  resource: k.resource,
  kind: k.kind,
  namespaced: k.namespaced,
  optional: k.crd !== undefined,
}));

/** A Kubernetes object in its wire (JSON) form, apiVersion and kind always set. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; [k: string]: unknown };
  [field: string]: unknown;
}

export interface KubeList {
  metadata: { resourceVersion?: string };
  items: KubeObject[];
}

export function apiVersionOf(r: WatchedResource): string {
  return r.group ? `${r.group}/${r.version}` : r.version;
}

/** Collection path across all namespaces (what list and watch use). */
export function collectionPath(r: WatchedResource): string {
  return r.group ? `/apis/${r.group}/${r.version}/${r.resource}` : `/api/${r.version}/${r.resource}`;
}

export function resourceId(r: WatchedResource): string {
  return r.group ? `${r.resource}.${r.group}` : r.resource;
}

/** Stamp apiVersion/kind (list items come without them) and check the identity fields. */
export function toKubeObject(r: WatchedResource, raw: unknown): KubeObject {
  const o = (raw ?? {}) as Record<string, unknown>;
  const meta = o.metadata as Record<string, unknown> | undefined;
  if (!meta || typeof meta.name !== 'string' || meta.name === '') {
    throw new Error(`read ${resourceId(r)}: object without metadata.name`);
  }
  return { ...o, apiVersion: apiVersionOf(r), kind: r.kind, metadata: meta as KubeObject['metadata'] };
}

const PAGE_SIZE = 500;

interface Page {
  items: unknown[];
  metadata?: { resourceVersion?: string; _continue?: string; continue?: string };
}
type PageFn = (cont: string | undefined) => Promise<Page>;

/** A list function for one resource: every page, items in wire form. */
export function makeLister(kc: KubeConfig, r: WatchedResource): () => Promise<KubeList> {
  const page = pageFunction(kc, r);
  return async () => {
    const items: KubeObject[] = [];
    let cont: string | undefined;
    let resourceVersion: string | undefined;
    do {
      const p = await page(cont);
      for (const it of p.items ?? []) items.push(toKubeObject(r, it));
      resourceVersion = p.metadata?.resourceVersion;
      cont = p.metadata?._continue || p.metadata?.continue || undefined;
    } while (cont);
    return { metadata: { resourceVersion }, items };
  };
}

function typed(
  modelType: string,
  call: (q: { limit: number; _continue?: string }) => Promise<{ items: unknown[]; metadata?: Page['metadata'] }>,
): PageFn {
  return async (cont) => {
    const list = await call({ limit: PAGE_SIZE, _continue: cont });
    return {
      items: list.items.map((it) => ObjectSerializer.serialize(it, modelType, '')),
      metadata: list.metadata,
    };
  };
}

function pageFunction(kc: KubeConfig, r: WatchedResource): PageFn {
  if (r.group === '') {
    const core = kc.makeApiClient(CoreV1Api);
    switch (r.resource) {
      case 'namespaces':
        return typed('V1Namespace', (q) => core.listNamespace(q));
      case 'pods':
        return typed('V1Pod', (q) => core.listPodForAllNamespaces(q));
      case 'nodes':
        return typed('V1Node', (q) => core.listNode(q));
      case 'services':
        return typed('V1Service', (q) => core.listServiceForAllNamespaces(q));
    }
    throw new Error(`list ${resourceId(r)}: no typed list call for this core resource`);
  }
  if (r.group === 'networking.k8s.io' && r.resource === 'networkpolicies') {
    const net = kc.makeApiClient(NetworkingV1Api);
    return typed('V1NetworkPolicy', (q) => net.listNetworkPolicyForAllNamespaces(q));
  }
  const custom = kc.makeApiClient(CustomObjectsApi);
  const base = { group: r.group, version: r.version, plural: r.resource, limit: PAGE_SIZE };
  return async (cont) =>
    (r.namespaced
      ? await custom.listCustomObjectForAllNamespaces({ ...base, _continue: cont })
      : await custom.listClusterCustomObject({ ...base, _continue: cont })) as Page;
}
