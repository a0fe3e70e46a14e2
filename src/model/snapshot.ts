// Decoded Kubernetes objects -> validated, normalized Snapshot. Every source (directory,
// Kubernetes API) feeds objects here, so they all reject the same input the same way:
// a bad object becomes one ValidationError and is dropped; everything else loads. Loaded
// and rejected objects carry their identity (objectKey), so the agent can keep a rejected
// object's last valid version (last-good.ts).
import { parseAntreaNodePolicy, isAntreaNodePolicy } from './antrea';
import { parseClusterNetworkPolicy } from './cnp';
import { defaultConfig, parseNetfenceConfig } from './config';
import { Field, FieldError, type PathSegment } from './field';
import { parseMultiNetworkPolicy, parseNetworkPolicy, POLICY_FOR_ANNOTATION } from './netpol';
import {
  parseNamespace,
  parseNetworkAttachmentDefinition,
  parseNode,
  parsePod,
  parseService,
  readMeta,
  type Meta,
} from './objects';
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

type Handler = {
  /** The kind as the model names it (an Antrea node policy is a NodePolicy). */
  kind: string;
  namespaced: boolean;
  /** Policy kinds reject unknown fields; other kinds carry many fields netfence ignores. */
  strict: boolean;
  add(doc: Field, meta: Meta, s: Snapshot, warn: (msg: string) => void): void;
};

const HANDLERS: Record<string, Handler> = {
  'v1/Namespace': { kind: 'Namespace', namespaced: false, strict: false, add: (d, m, s) => s.namespaces.push(parseNamespace(d, m)) },
  'v1/Pod': { kind: 'Pod', namespaced: true, strict: false, add: (d, m, s) => s.pods.push(parsePod(d, m)) },
  'v1/Node': { kind: 'Node', namespaced: false, strict: false, add: (d, m, s) => s.nodes.push(parseNode(d, m)) },
  'v1/Service': { kind: 'Service', namespaced: true, strict: false, add: (d, m, s) => s.services.push(parseService(d, m)) },
  'k8s.cni.cncf.io/v1/NetworkAttachmentDefinition': {
    kind: 'NetworkAttachmentDefinition',
    namespaced: true,
    strict: false,
    add: (d, m, s) => s.networkAttachmentDefinitions.push(parseNetworkAttachmentDefinition(d, m)),
  },
  'networking.k8s.io/v1/NetworkPolicy': {
    kind: 'NetworkPolicy',
    namespaced: true,
    strict: true,
    add: (d, m, s) => s.policies.push(parseNetworkPolicy(d, m)),
  },
  'policy.networking.k8s.io/v1alpha2/ClusterNetworkPolicy': {
    kind: 'ClusterNetworkPolicy',
    namespaced: false,
    strict: true,
    add: (d, m, s) => s.policies.push(parseClusterNetworkPolicy(d, m)),
  },
  'k8s.cni.cncf.io/v1beta1/MultiNetworkPolicy': {
    kind: 'MultiNetworkPolicy',
    namespaced: true,
    strict: true,
    add: (d, m, s, warn) => {
      const p = parseMultiNetworkPolicy(d, m);
      if (p) s.policies.push(p);
      else warn(`no ${POLICY_FOR_ANNOTATION} annotation, the policy applies to no network`);
    },
  },
  'crd.antrea.io/v1beta1/ClusterNetworkPolicy': {
    kind: 'NodePolicy',
    namespaced: false,
    strict: true,
    add: (d, m, s, warn) => {
      if (isAntreaNodePolicy(d)) s.policies.push(parseAntreaNodePolicy(d, m));
      else warn('not a node policy (no policy-level appliedTo nodeSelector): netfence enforces only node policies of this kind');
    },
  },
};

const CONFIG_KEY = 'netfence.io/v1alpha1/NetfenceConfig';
/** There is at most one NetfenceConfig: its identity ignores its name. */
export const CONFIG_OBJECT_KEY = 'NetfenceConfig';
const TOP_LEVEL = ['apiVersion', 'kind', 'metadata', 'spec', 'status'];

function objectName(kind: string, doc: Field, namespaced: boolean): string {
  const m = doc.get('metadata');
  const name = typeof m.get('name').value === 'string' ? (m.get('name').value as string) : '<unnamed>';
  if (!namespaced) return `${kind} ${name}`;
  const ns = typeof m.get('namespace').value === 'string' ? (m.get('namespace').value as string) : 'default';
  return `${kind} ${ns}/${name}`;
}

/** Identity of an object across snapshots: "Kind namespace/name" (cluster-scoped: "Kind name"),
 *  Kind as the model names it (policyName's form). */
export function objectKey(kind: string, namespace: string | undefined, name: string): string {
  return namespace !== undefined ? `${kind} ${namespace}/${name}` : `${kind} ${name}`;
}

/** Identity of a document that may be invalid: undefined when it has no readable name. */
function rawObjectKey(handler: Handler, doc: Field): string | undefined {
  const m = doc.get('metadata');
  const name = m.get('name').value;
  if (typeof name !== 'string' || name === '') return undefined;
  const ns = m.get('namespace').value;
  return objectKey(handler.kind, handler.namespaced ? (typeof ns === 'string' ? ns : 'default') : undefined, name);
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

/** `List` objects (kubectl get -o yaml) are flattened into their items. */
function flatten(objects: SourceObject[]): { obj: SourceObject; doc: Field }[] {
  return objects.flatMap((obj) => {
    const root = new Field(obj.doc);
    const isList = root.present && typeof obj.doc === 'object' && root.get('kind').value === 'List';
    return isList ? root.get('items').items().map((doc) => ({ obj, doc })) : [{ obj, doc: root }];
  });
}

export function buildSnapshot(objects: SourceObject[]): Snapshot {
  const s = emptySnapshot();
  const origins: Record<string, { file?: string }> = {};
  const seen = new Map<string, string>();
  let configFrom: string | undefined;
  for (const { obj, doc } of flatten(objects)) {
    const where = (segments: PathSegment[]) => {
      const line = obj.locate?.(segments);
      return obj.file ? `${obj.file}${line ? `:${line}` : ''}` : '';
    };
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
    const apiVersion = doc.get('apiVersion').value;
    const kind = doc.get('kind').value;
    if (typeof apiVersion !== 'string' || typeof kind !== 'string') {
      const missing = typeof kind !== 'string' ? 'kind' : 'apiVersion';
      fail('<unknown object>', new FieldError([...doc.segments, missing], 'is required'));
      continue;
    }
    const key = `${apiVersion}/${kind}`;
    if (key === CONFIG_KEY) {
      const object = `NetfenceConfig ${String(doc.get('metadata').get('name').value ?? 'netfence')}`;
      try {
        if (configFrom) doc.fail(`duplicate NetfenceConfig, the first is in ${configFrom}`);
        s.config = parseNetfenceConfig(doc);
        configFrom = where([]) || 'another object';
        loaded(CONFIG_OBJECT_KEY);
      } catch (e) {
        if (!(e instanceof FieldError)) throw e;
        fail(object, e, CONFIG_OBJECT_KEY);
      }
      continue;
    }
    const handler = HANDLERS[key];
    if (!handler) {
      const at = where([]);
      s.warnings.push(`skip ${objectName(kind, doc, true)}${at ? ` (${at})` : ''}: unsupported kind ${key}`);
      continue;
    }
    const object = objectName(kind, doc, handler.namespaced);
    try {
      if (handler.strict) doc.object(TOP_LEVEL);
      const meta = readMeta(doc, handler.namespaced);
      const id = objectKey(handler.kind, meta.namespace, meta.name);
      const first = seen.get(id);
      if (first !== undefined) doc.get('metadata').get('name').fail(`duplicate object, the first is in ${first}`);
      handler.add(doc, meta, s, (msg) => {
        const at = where([]);
        s.warnings.push(`skip ${object}${at ? ` (${at})` : ''}: ${msg}`);
      });
      seen.set(id, where([]) || 'another object');
      loaded(id);
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
