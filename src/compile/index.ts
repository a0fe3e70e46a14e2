export { compile } from './compile';
export type { DiscoveredEndpoint } from './endpoint';
export type * from './output';
