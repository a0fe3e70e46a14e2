// Issue 14's policy set: many NetworkPolicies selecting one pod, one ipBlock and one
// port each, so its ingress table spans several chunks. Policy i allows
// manyPolicyCidr(i) to TCP port 1000 + i.

/** The ipBlock of policy i: 10.100.0.0/24, 10.100.1.0/24, ... 10.101.0.0/24, ... */
export function manyPolicyCidr(i: number): string {
  return `10.${100 + (i >> 8)}.${i & 255}.0/24`;
}

/** `n` NetworkPolicies `<name><i>` in `namespace` selecting pods labelled `label`, as YAML
 *  documents each led by `---`. */
export function manyPoliciesYaml(n: number, namespace: string, name: string, label: Record<string, string>): string {
  const selector = JSON.stringify(label);
  return Array.from(
    { length: n },
    (_, i) =>
      `---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: ${name}${i}, namespace: ${namespace} }\n` +
      `spec: { podSelector: { matchLabels: ${selector} }, ingress: [{ from: [{ ipBlock: { cidr: ${manyPolicyCidr(i)} } }], ports: [{ port: ${1000 + i} }] }] }\n`,
  ).join('');
}
