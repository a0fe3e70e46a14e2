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
import { READ_KINDS, type Collection, type Collections, type ReadKind } from './registry';
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
const HANDLERS = new Map<string, ReadKind>(
  READ_KINDS.flatMap((k) => [k.apiVersion, ...(k.alsoApiVersions ?? [])].map((v) => [`${v}/${k.kind}`, k] as const)),
);

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
function flatten(obj: SourceObject): Doc[] {
  const root = new Field(obj.doc);
  const isList = root.present && typeof obj.doc === 'object' && root.get('kind').value === 'List';
  return isList
    ? root
        .get('items')
        .items()
        .map((doc) => ({ obj, doc }))
    : [{ obj, doc: root }];
}

/** One document's part of a snapshot, decoded on its own (no other document is needed): a
 *  source keeps it (per file, per API object) while the document is unchanged, so a change
 *  decodes only what changed. It holds no reference to the raw document. */
export interface DecodedDoc {
  /** Identity (objectKey) of a document of a kind netfence reads: copies are all rejected. */
  id?: string;
  /** "Kind ns/name" as errors name it. */
  object: string;
  file?: string;
  locate?: SourceObject['locate'];
  /** Path of a List's item in its document (absent: the document itself). */
  segments?: PathSegment[];
  errors: readonly ValidationError[];
  warnings: readonly string[];
  /** Set when it loads: its identity (the same string as `id` when equal: 100k objects)... */
  key?: string;
  origin?: { file?: string };
  /** ...and what it adds: an object to a collection, or the NetfenceConfig. */
  collection?: Collection;
  value?: Item;
  config?: NetfenceConfig;
}

type Item = Collections[Collection][number];
const NONE: readonly never[] = Object.freeze([]);

/** A ValidationError for `err`, located in the document's file. */
function validationError(
  d: Pick<DecodedDoc, 'file' | 'locate'>,
  object: string,
  err: FieldError,
  key?: string,
): ValidationError {
  const line = d.locate?.(err.segments);
  return {
    ...(d.file !== undefined && { file: d.file }),
    ...(line !== undefined && { line }),
    object,
    field: err.field,
    message: err.message,
    ...(key !== undefined && { key }),
  };
}

/** "file:line" of a document ('' without a file). */
function place(d: DecodedDoc): string {
  const line = d.locate?.(d.segments ?? []);
  return d.file ? `${d.file}${line ? `:${line}` : ''}` : '';
}

function decodeDoc({ obj, doc }: Doc, origin: { file?: string }): DecodedDoc {
  const errors: ValidationError[] = [];
  const warnings: string[] = [];
  const out: DecodedDoc = {
    object: '<unknown object>',
    ...(obj.file !== undefined && { file: obj.file }),
    ...(obj.locate && { locate: obj.locate }),
    ...(doc.segments.length > 0 && { segments: doc.segments }),
    errors: NONE,
    warnings: NONE,
  };
  const fail = (object: string, err: FieldError, key?: string): void => {
    errors.push(validationError(out, object, err, key));
  };
  const warn = (object: string, msg: string): void => {
    const at = place(out);
    warnings.push(`${object}${at ? ` (${at})` : ''}: ${msg}`);
  };
  const done = (): DecodedDoc => {
    if (errors.length) out.errors = errors;
    if (warnings.length) out.warnings = warnings;
    return out;
  };
  const apiVersion = doc.get('apiVersion').value;
  const kind = doc.get('kind').value;
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') {
    const missing = typeof kind !== 'string' ? 'kind' : 'apiVersion';
    fail(out.object, new FieldError([...doc.segments, missing], 'is required'));
    return done();
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
    return done();
  }
  const id = identity(doc);
  const object = handler
    ? objectName(kind, doc, handler.namespaced)
    : `NetfenceConfig ${String(doc.get('metadata').get('name').value ?? 'netfence')}`;
  out.object = object === id ? id : object;
  if (id !== undefined) out.id = id;
  if (!handler) {
    try {
      out.config = parseNetfenceConfig(doc);
      out.key = CONFIG_OBJECT_KEY;
      out.origin = origin;
    } catch (e) {
      if (!(e instanceof FieldError)) throw e;
      fail(out.object, e, CONFIG_OBJECT_KEY);
    }
    return done();
  }
  // Reported only once the object loads: a rejected object has just its rejection.
  const parsedWarnings: string[] = [];
  const reported: FieldError[] = [];
  try {
    if (handler.policy) doc.object(TOP_LEVEL);
    const meta = readMeta(doc, handler.namespaced);
    const loadedId = objectKey(handler.name, meta.namespace, meta.name);
    const value = handler.parse(doc, meta, {
      warn: (msg) => parsedWarnings.push(msg),
      report: (err) => reported.push(err),
    });
    out.key = loadedId === id ? id : loadedId;
    out.origin = origin;
    if (value !== undefined) {
      out.collection = handler.collection;
      out.value = value;
    }
    for (const msg of parsedWarnings) warn(out.object, msg);
    for (const err of reported) fail(out.object, err, loadedId);
  } catch (e) {
    if (!(e instanceof FieldError)) throw e;
    fail(out.object, e, rawObjectKey(handler, doc));
  }
  return done();
}

/** Decodes every document of `objects` (a List's items one by one), each on its own. */
export function decodeObjects(objects: readonly SourceObject[]): DecodedDoc[] {
  const out: DecodedDoc[] = [];
  // Every object of one file shares its origin record.
  let origin: { file?: string } = {};
  for (const obj of objects) {
    if (origin.file !== obj.file) origin = obj.file !== undefined ? { file: obj.file } : {};
    for (const d of flatten(obj)) out.push(decodeDoc(d, origin));
  }
  return out;
}

/** The snapshot of decoded documents (in order; `leading` errors first: the files' YAML
 *  syntax errors). Copies of one object never replace each other by file order: every copy
 *  is rejected (one error naming each place), so its last valid version stays enforced. */
export function assembleSnapshot(
  parts: Iterable<readonly DecodedDoc[]>,
  leading: Iterable<ValidationError> = NONE,
): Snapshot {
  const s = emptySnapshot();
  for (const e of leading) s.errors.push(e);
  // Copies are rare: a set of the identities (one insert per document) finds whether there
  // are any, and only then are they grouped.
  const ids = new Set<string>();
  let withId = 0;
  for (const docs of parts)
    for (const d of docs)
      if (d.id !== undefined) {
        ids.add(d.id);
        withId++;
      }
  const copied = ids.size < withId;
  // An identity's document, or every copy once it has more than one.
  const byId = new Map<string, DecodedDoc | DecodedDoc[]>();
  if (copied)
    for (const docs of parts)
      for (const d of docs) {
        if (d.id === undefined) continue;
        const seen = byId.get(d.id);
        if (seen === undefined) byId.set(d.id, d);
        else if (Array.isArray(seen)) seen.push(d);
        else byId.set(d.id, [seen, d]);
      }
  const origins = new Map<string, { file?: string }>();
  for (const docs of parts)
    for (const d of docs) {
      // Without copies (the usual case), no second lookup per document.
      const copies = copied && d.id !== undefined ? byId.get(d.id) : undefined;
      if (Array.isArray(copies)) {
        if (copies[0] === d) {
          const places = copies.map((c) => place(c) || 'an object without a file').join(', ');
          const segments = [...(d.segments ?? []), 'metadata', 'name'];
          const message = `duplicate object, defined ${copies.length} times (${places}): every copy is rejected until one is left`;
          s.errors.push(validationError(d, d.object, new FieldError(segments, message), d.id));
        }
        continue;
      }
      for (const e of d.errors) s.errors.push(e);
      for (const w of d.warnings) s.warnings.push(w);
      if (d.key === undefined) continue;
      origins.set(d.key, d.origin ?? {});
      if (d.config) s.config = d.config;
      if (d.collection) (s[d.collection] as Item[]).push(d.value!);
    }
  s.policies = withSystemPolicies(s.policies, s.config);
  s.origins = origins;
  return s;
}

export function buildSnapshot(objects: readonly SourceObject[]): Snapshot {
  return assembleSnapshot([decodeObjects(objects)]);
}

/** "file:line: Kind ns/name: field: message" for logs and CLI output. */
export function formatValidationError(e: ValidationError): string {
  const at = e.file ? `${e.file}${e.line ? `:${e.line}` : ''}: ` : '';
  return `${at}load ${e.object}: ${e.field ? `${e.field}: ` : ''}${e.message}`;
}
