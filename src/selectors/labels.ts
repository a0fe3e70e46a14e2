// Kubernetes label selector semantics: matchLabels and matchExpressions are AND-ed;
// an empty selector ({}) selects everything.
import type { LabelSelector, LabelSelectorRequirement, Labels } from '../model/types';

function matchesRequirement(r: LabelSelectorRequirement, labels: Labels): boolean {
  const has = Object.prototype.hasOwnProperty.call(labels, r.key);
  switch (r.operator) {
    case 'In':
      return has && (r.values ?? []).includes(labels[r.key]);
    case 'NotIn':
      // Upstream: NotIn also matches objects without the key.
      return !has || !(r.values ?? []).includes(labels[r.key]);
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
  }
}

export function matchesSelector(selector: LabelSelector, labels: Labels): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[k] !== v || !Object.prototype.hasOwnProperty.call(labels, k)) return false;
  }
  return (selector.matchExpressions ?? []).every((r) => matchesRequirement(r, labels));
}
