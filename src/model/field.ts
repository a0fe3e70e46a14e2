// A cursor over untyped decoded YAML/JSON that knows its path, so every validation
// failure names the exact field ("spec.ingress[0].from[1].ipBlock.cidr").
import type { LabelSelector, LabelSelectorRequirement } from './types';
import { intern, own } from './intern';
import { canonicalIp, formatCidr, parseCidr, type Cidr } from './ip';

export type PathSegment = string | number;

export class FieldError extends Error {
  constructor(
    readonly segments: PathSegment[],
    message: string,
  ) {
    super(message);
  }
  get field(): string {
    return formatPath(this.segments);
  }
}

export function formatPath(segments: readonly PathSegment[]): string {
  return segments.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('');
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${JSON.stringify(v)}`;
}

export class Field {
  private path_?: PathSegment[];

  /** `parent` and `key` instead of `segments`: a child's path is built only when asked
   *  for (errors), not for every field read (a 20k-policy directory reads millions). */
  constructor(
    readonly value: unknown,
    segments: PathSegment[] = [],
    private readonly parent?: Field,
    private readonly key?: PathSegment,
  ) {
    if (!parent) this.path_ = segments;
  }

  get segments(): PathSegment[] {
    return (this.path_ ??= [...this.parent!.segments, this.key!]);
  }

  get path(): string {
    return formatPath(this.segments);
  }

  /** Present = neither absent nor null (YAML `key:` with no value decodes to null). */
  get present(): boolean {
    return this.value !== undefined && this.value !== null;
  }

  fail(message: string): never {
    throw new FieldError(this.segments, message);
  }

  /** A child field; undefined unless this is a plain object owning `key`. */
  get(key: string): Field {
    const v = this.value;
    const own =
      typeof v === 'object' && v !== null && !Array.isArray(v) && Object.prototype.hasOwnProperty.call(v, key);
    return new Field(own ? (v as Record<string, unknown>)[key] : undefined, undefined, this, key);
  }

  /** Asserts an object; with `allowed`, any other key is an error naming it. */
  object(allowed?: readonly string[]): Record<string, unknown> {
    this.required();
    if (typeof this.value !== 'object' || Array.isArray(this.value)) {
      this.fail(`must be an object, got ${describe(this.value)}`);
    }
    const obj = this.value as Record<string, unknown>;
    if (allowed) {
      for (const k of Object.keys(obj)) {
        if (!allowed.includes(k)) new Field(obj[k], undefined, this, k).fail(`unknown field "${k}"`);
      }
    }
    return obj;
  }

  /** Object keys, for maps like labels. */
  entries(): [string, Field][] {
    return Object.keys(this.object()).map((k) => [k, this.get(k)]);
  }

  /** Items of a list; absent/null gives []. */
  items(): Field[] {
    if (!this.present) return [];
    if (!Array.isArray(this.value)) this.fail(`must be a list, got ${describe(this.value)}`);
    return (this.value as unknown[]).map((v, i) => new Field(v, undefined, this, i));
  }

  /** Items of a list that must be present and non-empty. */
  nonEmptyItems(): Field[] {
    const items = this.items();
    if (items.length === 0) this.fail('must be a non-empty list');
    return items;
  }

  required(): void {
    if (!this.present) this.fail('is required');
  }

  string(): string {
    return intern(this.nonEmpty());
  }

  /** string() for a value that does not repeat (a name, an address): not pooled. */
  ownString(): string {
    return own(this.nonEmpty());
  }

  private nonEmpty(): string {
    this.required();
    if (typeof this.value !== 'string') this.fail(`must be a string, got ${describe(this.value)}`);
    if (this.value === '') this.fail('must not be empty');
    return this.value;
  }

  /** A string that may be empty (label values). */
  text(): string {
    if (typeof this.value !== 'string') this.fail(`must be a string, got ${describe(this.value)}`);
    return intern(this.value);
  }

  /** An optional string: "" is absent too, as the API's omitempty fields read it. */
  optString(): string | undefined {
    return this.present && this.value !== '' ? this.string() : undefined;
  }

  oneOf<T extends string>(values: readonly T[], dflt?: T): T {
    if (!this.present && dflt !== undefined) return dflt;
    const s = this.string();
    const known = values.find((v) => v === s);
    if (known === undefined) this.fail(`must be one of ${values.join(', ')}, got "${s}"`);
    return known;
  }

  int(min: number, max: number): number {
    return this.inRange(Number.isInteger, 'an integer', min, max);
  }

  optInt(min: number, max: number, dflt?: number): number | undefined {
    return this.present ? this.int(min, max) : dflt;
  }

  number(min: number, max: number): number {
    return this.inRange(Number.isFinite, 'a number', min, max);
  }

  /** A number of the kind `is` accepts (`what` names it in the error), within min..max. */
  private inRange(is: (v: number) => boolean, what: string, min: number, max: number): number {
    this.required();
    const v = this.value;
    if (typeof v !== 'number' || !is(v)) this.fail(`must be ${what}, got ${describe(v)}`);
    if (v < min || v > max) this.fail(`must be between ${min} and ${max}, got ${v}`);
    return v;
  }

  bool(dflt: boolean): boolean {
    if (!this.present) return dflt;
    if (typeof this.value !== 'boolean') this.fail(`must be true or false, got ${describe(this.value)}`);
    return this.value;
  }

  /** An IP address in canonical text form. */
  ip(): string {
    const s = this.ownString();
    const ip = canonicalIp(s);
    if (ip === undefined) this.fail(`invalid IP address "${s}"`);
    return ip;
  }

  cidr(): Cidr {
    const s = this.string();
    const c = parseCidr(s);
    if (!c) this.fail(`invalid CIDR "${s}"`);
    return c;
  }

  /** A CIDR in canonical text form. */
  cidrText(): string {
    return formatCidr(this.cidr());
  }

  /** A string->string map (labels, annotations); absent gives {}. */
  stringMap(): Record<string, string> {
    if (!this.present) return {};
    const out: Record<string, string> = {};
    for (const [k, f] of this.entries()) out[k] = f.text();
    return out;
  }

  /** A Kubernetes LabelSelector; malformed operators and values are errors. */
  selector(): LabelSelector {
    this.object(['matchLabels', 'matchExpressions']);
    const sel: LabelSelector = {};
    const ml = this.get('matchLabels');
    if (ml.present) {
      sel.matchLabels = ml.stringMap();
      for (const [k, f] of ml.entries()) checkLabelKey(f, k);
    }
    const me = this.get('matchExpressions');
    if (me.present) {
      sel.matchExpressions = me.items().map((e): LabelSelectorRequirement => {
        e.object(['key', 'operator', 'values']);
        const key = e.get('key').string();
        checkLabelKey(e.get('key'), key);
        const operator = e.get('operator').oneOf(['In', 'NotIn', 'Exists', 'DoesNotExist'] as const);
        const vf = e.get('values');
        const values = vf.items().map((v) => v.text());
        if ((operator === 'In' || operator === 'NotIn') && values.length === 0) {
          vf.fail(`must be non-empty for operator ${operator}`);
        }
        if ((operator === 'Exists' || operator === 'DoesNotExist') && values.length > 0) {
          vf.fail(`must be empty for operator ${operator}`);
        }
        return values.length ? { key, operator, values } : { key, operator };
      });
    }
    return sel;
  }
}

// Qualified name: optional DNS prefix "/" name of <= 63 alphanumerics, '-', '_', '.'.
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_PREFIX = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

function checkLabelKey(f: Field, key: string): void {
  const slash = key.lastIndexOf('/');
  const name = slash < 0 ? key : key.slice(slash + 1);
  const prefix = slash < 0 ? undefined : key.slice(0, slash);
  if (!LABEL_NAME.test(name) || (prefix !== undefined && !LABEL_PREFIX.test(prefix))) {
    f.fail(`invalid label key "${key}"`);
  }
}
