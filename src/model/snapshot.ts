// Decoded Kubernetes objects -> validated, normalized Snapshot. Every source (directory,
// Kubernetes API) feeds objects here, so they all reject the same input the same way:
// a bad object becomes one ValidationError and is dropped; everything else loads. Loaded
// and rejected objects carry their identity (objectKey), so the agent can keep a rejected
// object's last valid version (last-good.ts). A document of a kind netfence does not read
// is an error when it may hide a policy (kinds.ts), and copies of one identity are all
// rejected: neither can take the other's place by file order.
import { defaultConfig, parseNetfenceConfig } from './config';
import { Field, FieldError, type PathSegment } from './field';
import { unhandledKind } from './kinds';
import { readMeta } from './objects';
import { READ_KINDS, type ReadKind } from './registry';
import { comparePolicies, type Policy } from './rules';
import { systemPolicies } from './system';
import type { NetfenceConfig, Snapshot, ValidationError } from './types';

export interface SourceObject {
  /** The decoded object (YAML document or API object). */
  doc: unknown;
  file?: string;
  /** Line of the field at `segments` (or of the document when unknown), for errors. */
  locate?: (segments: PathSegment[]) => number | undefined;
}

/** The registry's kinds by "apiVersion/kind". */
const HANDLERS = new Map<string, ReadKind>(READ_KINDS.map((k) => [`${k.apiVersion}/${k.kind}`, k]));

const CONFIG_KEY = 'netfence.io/v1alpha1/NetfenceConfig';
/** There is at most one NetfenceConfig: its identity ignores its name. */
export const CONFIG_OBJECT_KEY = 'NetfenceConfig';
const READ_TYPES = [...HANDLERS.keys(), CONFIG_KEY];
const TOP_LEVEL = ['apiVersion', 'kind', 'metadata', 'spec', 'status'];

/** metadata.namespace as readMeta reads it, of a document that may be invalid. */
function namespaceOf(metadata: Field): string {
  const ns = metadata.get('namespace').value;
  return typeof ns === 'string' && ns !== '' ? ns : 'default';
}

function objectName(kind: string, doc: Field, namespaced: boolean): string {
  const m = doc.get('metadata');
  const name = typeof m.get('name').value === 'string' ? (m.get('name').value as string) : '<unnamed>';
  if (!namespaced) return `${kind} ${name}`;
  return `${kind} ${namespaceOf(m)}/${name}`;
}

/** Identity of an object across snapshots: "Kind namespace/name" (cluster-scoped: "Kind name"),
 *  Kind as the model names it (policyName's form). */
export function objectKey(kind: string, namespace: string | undefined, name: string): string {
  return namespace !== undefined ? `${kind} ${namespace}/${name}` : `${kind} ${name}`;
}

/** Identity of a document that may be invalid: undefined when it has no readable name. */
function rawObjectKey(handler: ReadKind, doc: Field): string | undefined {
  const m = doc.get('metadata');
  const name = m.get('name').value;
  if (typeof name !== 'string' || name === '') return undefined;
  return objectKey(handler.name, handler.namespaced ? namespaceOf(m) : undefined, name);
}

/** "apiVersion/kind" of a document, when both are strings. */
function typeKey(doc: Field): string | undefined {
  const apiVersion = doc.get('apiVersion').value;
  const kind = doc.get('kind').value;
  return typeof apiVersion === 'string' && typeof kind === 'string' ? `${apiVersion}/${kind}` : undefined;
}

/** Identity of a document of a kind netfence reads (objectKey), when it has one. */
function identity(doc: Field): string | undefined {
  const key = typeKey(doc);
  if (key === CONFIG_KEY) return CONFIG_OBJECT_KEY;
  const handler = key !== undefined ? HANDLERS.get(key) : undefined;
  return handler && rawObjectKey(handler, doc);
}

/** The loaded policies plus the privileged system policy of `config`, in evaluation order. */
export function withSystemPolicies(policies: readonly Policy[], config: NetfenceConfig): Policy[] {
  return [...policies.filter((p) => p.ref.kind !== 'System'), ...systemPolicies(config)].sort(comparePolicies);
}

export function emptySnapshot(config: NetfenceConfig = defaultConfig()): Snapshot {
  return {
    namespaces: [],
    pods: [],
    nodes: [],
    services: [],
    networkAttachmentDefinitions: [],
    policies: [],
    config,
    errors: [],
    warnings: [],
  };
}

type Doc = { obj: SourceObject; doc: Field };

/** `List` objects (kubectl get -o yaml) are flattened into their items. */
function flatten(objects: SourceObject[]): Doc[] {
  return objects.flatMap((obj) => {
    const root = new Field(obj.doc);
    const isList = root.present && typeof obj.doc === 'object' && root.get('kind').value === 'List';
    return isList
      ? root
          .get('items')
          .items()
          .map((doc) => ({ obj, doc }))
      : [{ obj, doc: root }];
  });
}

/** "file:line" of a document ('' without a file). */
function place({ obj, doc }: Doc): string {
  const line = obj.locate?.(doc.segments);
  return obj.file ? `${obj.file}${line ? `:${line}` : ''}` : '';
}

/** The documents of every identity defined more than once (in one file or several). */
function duplicates(docs: Doc[]): Map<string, Doc[]> {
  const byId = new Map<string, Doc[]>();
  for (const d of docs) {
    const id = identity(d.doc);
    if (id === undefined) continue;
    const copies = byId.get(id);
    if (copies) copies.push(d);
    else byId.set(id, [d]);
  }
  return new Map([...byId].filter(([, copies]) => copies.length > 1));
}

export function buildSnapshot(objects: SourceObject[]): Snapshot {
  const s = emptySnapshot();
  const origins: Record<string, { file?: string }> = {};
  const docs = flatten(objects);
  // Copies of one object never replace each other by file order: every copy is rejected
  // (one error naming each place), so its last valid version stays enforced.
  const dups = duplicates(docs);
  for (const d of docs) {
    const { obj, doc } = d;
    const fail = (object: string, err: FieldError, key?: string) => {
      const line = obj.locate?.(err.segments);
      s.errors.push({
        ...(obj.file !== undefined && { file: obj.file }),
        ...(line !== undefined && { line }),
        object,
        field: err.field,
        message: err.message,
        ...(key !== undefined && { key }),
      });
    };
    const loaded = (key: string) => {
      origins[key] = obj.file !== undefined ? { file: obj.file } : {};
    };
    const warn = (object: string, msg: string) => {
      const at = place(d);
      s.warnings.push(`${object}${at ? ` (${at})` : ''}: ${msg}`);
    };
    const apiVersion = doc.get('apiVersion').value;
    const kind = doc.get('kind').value;
    if (typeof apiVersion !== 'string' || typeof kind !== 'string') {
      const missing = typeof kind !== 'string' ? 'kind' : 'apiVersion';
      fail('<unknown object>', new FieldError([...doc.segments, missing], 'is required'));
      continue;
    }
    const key = `${apiVersion}/${kind}`;
    const handler = HANDLERS.get(key);
    if (!handler && key !== CONFIG_KEY) {
      // No identity: the agent keeps what the document's file held before (last-good.ts).
      const u = unhandledKind(apiVersion, kind, READ_TYPES);
      // Its scope is unknown: a namespace is named only when the document sets one.
      const name = objectName(kind, doc, doc.get('metadata').get('namespace').present);
      if ('error' in u) fail(name, new FieldError([...doc.segments, u.field], u.error));
      else warn(`skip ${name}`, u.warning);
      continue;
    }
    const object = handler
      ? objectName(kind, doc, handler.namespaced)
      : `NetfenceConfig ${String(doc.get('metadata').get('name').value ?? 'netfence')}`;
    const id = identity(doc);
    const copies = id !== undefined ? dups.get(id) : undefined;
    if (copies) {
      if (copies[0] === d) {
        const places = copies.map((c) => place(c) || 'an object without a file').join(', ');
        fail(
          object,
          new FieldError(
            [...doc.segments, 'metadata', 'name'],
            `duplicate object, defined ${copies.length} times (${places}): every copy is rejected until one is left`,
          ),
          id,
        );
      }
      continue;
    }
    if (!handler) {
      try {
        s.config = parseNetfenceConfig(doc);
        loaded(CONFIG_OBJECT_KEY);
      } catch (e) {
        if (!(e instanceof FieldError)) throw e;
        fail(object, e, CONFIG_OBJECT_KEY);
      }
      continue;
    }
    // Reported only once the object loads: a rejected object has just its rejection.
    const warnings: string[] = [];
    const reported: FieldError[] = [];
    try {
      if (handler.policy) doc.object(TOP_LEVEL);
      const meta = readMeta(doc, handler.namespaced);
      const loadedId = objectKey(handler.name, meta.namespace, meta.name);
      handler.add(doc, meta, s, { warn: (msg) => warnings.push(msg), report: (err) => reported.push(err) });
      loaded(loadedId);
      for (const msg of warnings) warn(object, msg);
      for (const err of reported) fail(object, err, loadedId);
    } catch (e) {
      if (!(e instanceof FieldError)) throw e;
      fail(object, e, rawObjectKey(handler, doc));
    }
  }
  s.policies = withSystemPolicies(s.policies, s.config);
  s.origins = origins;
  return s;
}

/** "file:line: Kind ns/name: field: message" for logs and CLI output. */
export function formatValidationError(e: ValidationError): string {
  const at = e.file ? `${e.file}${e.line ? `:${e.line}` : ''}: ` : '';
  return `${at}load ${e.object}: ${e.field ? `${e.field}: ` : ''}${e.message}`;
}
