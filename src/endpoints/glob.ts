// Shell-style globs for interface names: `*` (any run), `?` (one character), `[...]`
// (a set or range, `[!...]` or `[^...]` negated) and `\` (the next character literally).
// Our own, small: Node 20's path.matchesGlob prints an ExperimentalWarning at every start.

const cache = new Map<string, RegExp>();

function escape(c: string): string {
  return c.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
}

/** The bracket expression starting at pattern[i] === '[' as a regex class, and its end. */
function bracket(pattern: string, i: number): { re: string; end: number } | undefined {
  let j = i + 1;
  const negated = pattern[j] === '!' || pattern[j] === '^';
  if (negated) j++;
  let body = '';
  // A ']' right after the opening (or the negation) is a member, as in the shell.
  for (let first = true; j < pattern.length; first = false, j++) {
    const c = pattern[j];
    if (c === ']' && !first) return { re: `[${negated ? '^' : ''}${body}]`, end: j };
    if (c === '-' && !first && pattern[j + 1] !== ']') body += '-';
    else body += escape(c === '\\' && j + 1 < pattern.length ? pattern[++j] : c);
  }
  return undefined; // unclosed: the '[' is literal
}

export function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '\\' && i + 1 < pattern.length) re += escape(pattern[++i]);
    else if (c === '[') {
      const b = bracket(pattern, i);
      if (b) {
        re += b.re;
        i = b.end;
      } else re += '\\[';
    } else re += escape(c);
  }
  return new RegExp(`^${re}$`, 's');
}

export function matchesGlob(name: string, pattern: string): boolean {
  let re = cache.get(pattern);
  if (!re) cache.set(pattern, (re = globToRegExp(pattern)));
  return re.test(name);
}
