// A value made at its first use, for what a pass may never need (names of drop events).
export function once<T>(make: () => T): () => T {
  let made: { value: T } | undefined;
  return () => (made ??= { value: make() }).value;
}
