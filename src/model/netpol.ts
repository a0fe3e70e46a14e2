// networking.k8s.io/v1 NetworkPolicy and k8s.cni.cncf.io/v1beta1 MultiNetworkPolicy
// (same spec, plus the networks it applies to) -> normalized Policy of tier 'netpol'.
import { Field } from './field';
import { cidrWithin, formatCidr } from './ip';
import type { Meta } from './objects';
import { parsePortFields, parseRules, peersOrAny, portsOrAll, type RuleParser } from './policy-fields';
import type { Direction, Peer, Policy, PortSpec } from './rules';
import type { PolicyRef } from './types';

export const POLICY_FOR_ANNOTATION = 'k8s.v1.cni.cncf.io/policy-for';

// IANA_SVC_NAME: <= 15 lowercase alphanumerics or '-', at least one letter, no '--'.
const PORT_NAME = /^(?=.*[a-z])(?!.*--)[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$/;

/** NetworkPolicyPort: named ports stay names (IANA_SVC_NAME), resolved on the destination pod. */
export function parseNetpolPort(f: Field): PortSpec {
  return parsePortFields(f, (pf, ef, protocol) => {
    const name = pf.string();
    if (!PORT_NAME.test(name)) pf.fail(`invalid port name "${name}"`);
    if (ef.present) ef.fail('requires a numeric port, not a named port');
    return { protocol, name };
  });
}

function parsePeer(f: Field, namespace: string): Peer {
  f.object(['podSelector', 'namespaceSelector', 'ipBlock']);
  const ipb = f.get('ipBlock');
  const pod = f.get('podSelector');
  const ns = f.get('namespaceSelector');
  if (ipb.present) {
    if (pod.present || ns.present) f.fail('ipBlock cannot be combined with podSelector or namespaceSelector');
    ipb.object(['cidr', 'except']);
    const cidr = ipb.get('cidr').cidr();
    const except = ipb
      .get('except')
      .items()
      .map((e) => {
        const c = e.cidr();
        if (!cidrWithin(c, cidr) || c.prefix === cidr.prefix) {
          e.fail(`must be a strict subset of cidr ${formatCidr(cidr)}, got "${String(e.value)}"`);
        }
        return formatCidr(c);
      });
    return { kind: 'cidr', cidr: formatCidr(cidr), except };
  }
  if (!pod.present && !ns.present) f.fail('must set podSelector, namespaceSelector or ipBlock');
  // podSelector alone means the policy's own namespace; namespaceSelector alone means
  // every pod of the matching namespaces; both together are AND-ed.
  if (!ns.present) return { kind: 'pods', namespace, podSelector: pod.selector() };
  return {
    kind: 'pods',
    namespaceSelector: ns.selector(),
    ...(pod.present && { podSelector: pod.selector() }),
  };
}

function ruleParser(namespace: string): RuleParser {
  return (r, peersKey) => {
    r.object([peersKey, 'ports']);
    return {
      action: 'allow',
      // An absent or empty from/to matches every source/destination.
      peers: peersOrAny(r.get(peersKey), (p) => parsePeer(p, namespace)),
      ports: portsOrAll(r.get('ports'), parseNetpolPort),
    };
  };
}

function parseNetpolSpec(doc: Field, ref: PolicyRef, namespace: string): Policy {
  // Read as the API server decodes and defaults it: an absent spec or podSelector is the
  // empty one (every pod of the namespace), and an absent or empty policyTypes is Ingress,
  // plus Egress when egress rules exist (SetDefaults_NetworkPolicy).
  const spec = doc.get('spec');
  if (spec.present) spec.object(['podSelector', 'policyTypes', 'ingress', 'egress']);
  const ps = spec.get('podSelector');
  const podSelector = ps.present ? ps.selector() : {};
  const types = spec.get('policyTypes').items();
  const isolates: Direction[] = types.length
    ? [...new Set(types.map((t) => t.oneOf(['Ingress', 'Egress'] as const)))].map((t) => t.toLowerCase() as Direction)
    : spec.get('egress').items().length
      ? ['ingress', 'egress']
      : ['ingress'];
  // Rules of a direction the policy does not isolate have no effect upstream: they are
  // validated, then dropped.
  const rules = parseRules(spec, ruleParser(namespace)).filter((r) => isolates.includes(r.direction));
  return {
    ref,
    tier: 'netpol',
    priority: 0,
    subject: { kind: 'pods', namespace, podSelector },
    isolates: (['ingress', 'egress'] as const).filter((d) => isolates.includes(d)),
    rules,
  };
}

export function parseNetworkPolicy(doc: Field, meta: Meta): Policy {
  const namespace = meta.namespace ?? 'default';
  return parseNetpolSpec(doc, { kind: 'NetworkPolicy', namespace, name: meta.name }, namespace);
}

/** Returns undefined when the policy-for annotation is missing (the caller warns). */
export function parseMultiNetworkPolicy(doc: Field, meta: Meta): Policy | undefined {
  const namespace = meta.namespace ?? 'default';
  const text = meta.annotations[POLICY_FOR_ANNOTATION];
  if (text === undefined) return undefined;
  const af = new Field(text, ['metadata', 'annotations', POLICY_FOR_ANNOTATION]);
  const networks = text
    .split(',')
    .map((s) => s.trim())
    .map((s) => {
      const parts = s.split('/');
      if (parts.length > 2 || parts.some((p) => !p)) af.fail(`invalid network "${s}": want "nad" or "namespace/nad"`);
      return parts.length === 2 ? s : `${namespace}/${s}`;
    });
  const policy = parseNetpolSpec(doc, { kind: 'MultiNetworkPolicy', namespace, name: meta.name }, namespace);
  return { ...policy, networks: [...new Set(networks)] };
}
