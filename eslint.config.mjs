// Lint: typescript-eslint's recommended rules, the import graph (no cycles, the layer order
// of DESIGN.md), Prettier's formatting owned by Prettier (eslint-config-prettier).
import tseslint from 'typescript-eslint';
import { createNodeResolver, importX } from 'eslint-plugin-import-x';
import prettier from 'eslint-config-prettier';

// Which src/ parts each part may import, lowest first. A part never imports one above it:
// the wire format at the bottom, then the pipeline model -> selectors -> compile ->
// reconcile -> datapath; sources, endpoints and redirect beside it; the programs on top.
const LAYERS = {
  wire: [],
  model: ['wire'],
  selectors: ['model'],
  reference: ['model', 'selectors', 'wire'],
  compile: ['model', 'selectors', 'wire'],
  datapath: ['model', 'wire'],
  reconcile: ['model', 'selectors', 'compile', 'datapath', 'wire'],
  sources: ['model'],
  endpoints: ['model', 'compile', 'datapath', 'wire'],
  redirect: ['model', 'datapath', 'wire'],
  trace: ['model', 'selectors', 'reference', 'compile', 'datapath', 'wire'],
  agent: ['model', 'selectors', 'compile', 'reconcile', 'datapath', 'wire', 'sources', 'endpoints', 'redirect', 'cni'],
  cni: ['model'],
  lab: [
    'model',
    'selectors',
    'compile',
    'reconcile',
    'datapath',
    'wire',
    'sources',
    'endpoints',
    'redirect',
    'cni',
    'agent',
  ],
  cli: [],
};
// Leaves every part may import: model/ip.ts (the one IP/CIDR parser) imports nothing.
const LEAVES = { model: ['./ip.ts'] };
const PARTS = Object.keys(LAYERS).filter((p) => p !== 'cli');
const zones = PARTS.flatMap((part) =>
  PARTS.concat('cli')
    .filter((p) => p !== part && !LAYERS[part].includes(p))
    .map((p) => ({
      target: `./src/${part}`,
      from: `./src/${p}`,
      except: LEAVES[p] ?? [],
      message: `src/${part} may import only ${LAYERS[part].map((l) => `src/${l}`).join(', ') || 'itself'} (the layer order: eslint.config.mjs LAYERS)`,
    })),
);

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      'native/build/**',
      'bpf/.output/**',
      'bench/results/**',
      'vagrant/.vagrant/**',
    ],
  },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    plugins: { 'import-x': importX },
    settings: { 'import-x/resolver-next': [createNodeResolver({ extensions: ['.ts', '.js', '.json'] })] },
    rules: {
      'import-x/no-cycle': 'error',
      'import-x/no-restricted-paths': ['error', { zones }],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  prettier,
);
