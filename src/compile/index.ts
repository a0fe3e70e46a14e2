export { compile, Compiler } from './compile';
export type { DiscoveredEndpoint } from './endpoint';
export type * from './output';
