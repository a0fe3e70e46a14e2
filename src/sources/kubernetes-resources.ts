// What the Kubernetes API source watches (every kind of the model's registry,
// src/model/registry.ts), and how each resource is listed. The RBAC manifest
// (deploy/rbac.yaml) must grant get/list/watch on exactly these; a unit test derives the
// expected rules from WATCHED_RESOURCES.
import type { KubeConfig } from '@kubernetes/client-node';
import http from 'node:http';
import https from 'node:https';
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
  return stamped(r, { ...((raw ?? {}) as Record<string, unknown>) });
}

/** toKubeObject on an object of our own (a list item fresh from JSON.parse), in place: a
 *  copy of each of 100k pods costs ~0.2 s and as much garbage. */
function stamped(r: WatchedResource, o: Record<string, unknown>): KubeObject {
  const meta = o.metadata as Record<string, unknown> | undefined;
  if (!meta || typeof meta.name !== 'string' || meta.name === '') {
    throw new Error(`read ${resourceId(r)}: object without metadata.name`);
  }
  o.apiVersion = apiVersionOf(r);
  o.kind = r.kind;
  return o as KubeObject;
}

const PAGE_SIZE = 500;

interface Page {
  items?: unknown[];
  metadata?: { resourceVersion?: string; continue?: string };
}

/** GET `path` from the current cluster as JSON, with the kubeconfig's TLS settings, proxy
 *  and credentials (the client's own). The typed list calls are not used: their model
 *  classes and the serializer that turns them back into the wire form cost more than the
 *  list itself (100k pods: seconds and hundreds of MB). Errors carry the HTTP statusCode. */
async function getJson(kc: KubeConfig, path: string): Promise<unknown> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error(`GET ${path}: no current cluster`);
  const url = new URL(cluster.server + path);
  const opts: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);
  const get = url.protocol === 'https:' ? https.get : http.get;
  return new Promise((resolve, reject) => {
    const req = get(url, { ...opts, headers: { ...opts.headers, Accept: 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) {
          const err = new Error(`GET ${url.pathname}: HTTP ${res.statusCode}: ${body.slice(0, 200)}`);
          reject(Object.assign(err, { statusCode: res.statusCode }));
          return;
        }
        try {
          resolve(JSON.parse(body));
        } catch (e) {
          reject(new Error(`GET ${url.pathname}: ${(e as Error).message}`));
        }
      });
    });
    req.on('error', reject);
  });
}

/** A list function for one resource: every page (limit/continue), items in wire form.
 *  Each page goes to `onPage` while the next one is on its way: what it does with the page
 *  (decoding) overlaps the server's work and the transfer instead of following them. */
export function makeLister(
  kc: KubeConfig,
  r: WatchedResource,
  onPage?: (items: readonly KubeObject[]) => void,
): () => Promise<KubeList> {
  const page = (cont: string | undefined): Promise<Page> => {
    const query = new URLSearchParams({ limit: String(PAGE_SIZE), ...(cont && { continue: cont }) });
    return getJson(kc, `${collectionPath(r)}?${query.toString()}`) as Promise<Page>;
  };
  return async () => {
    const items: KubeObject[] = [];
    let cont: string | undefined;
    let resourceVersion: string | undefined;
    let next = page(undefined);
    do {
      const p = await next;
      const from = items.length;
      for (const it of p.items ?? []) items.push(stamped(r, (it ?? {}) as Record<string, unknown>));
      resourceVersion = p.metadata?.resourceVersion;
      cont = p.metadata?.continue || undefined;
      // Asked for before this page is handed on (a failed request is awaited right after).
      if (cont) next = page(cont);
      onPage?.(items.slice(from));
    } while (cont);
    return { metadata: { resourceVersion }, items };
  };
}
