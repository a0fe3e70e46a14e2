// `netfence compile`: what the agent would program on a node, from a state directory
// (endpoints synthesized: one interface per local pod and one for the node).
import type { Command } from 'commander';
import { compile } from '../compile';
import type { CompileResult } from '../compile/output';
import { synthesizeEndpoints } from '../trace/endpoints';
import { loadState, pickNode } from './state';

interface Flags {
  state: string;
  node?: string;
  json?: boolean;
}

const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;

function tables(r: CompileResult) {
  const ids = [...new Set(r.rules.map((x) => x.table))].sort((a, b) => a - b);
  return ids.map((id) => ({
    id,
    endpoints: r.endpoints.flatMap((e) => [
      ...(e.ingressTable === id ? [`${e.pod ?? `node/${e.node}`} ingress`] : []),
      ...(e.egressTable === id ? [`${e.pod ?? `node/${e.node}`} egress`] : []),
    ]),
    rules: r.rules
      .filter((x) => x.table === id)
      .map(({ index, action, tier, policy, rule }) => ({ index, action, tier, policy: policy || null, rule })),
  }));
}

function summary(node: string, r: CompileResult): string {
  const lines = [
    `node ${node}: ${r.endpoints.length} endpoints, ${tables(r).length} tables, ${r.errors.length} errors`,
    '',
    'endpoints:',
  ];
  for (const e of r.endpoints) {
    const name = e.kind === 'host' ? `node/${e.node}` : `${e.pod}${e.network ? ` on ${e.network}` : ''}`;
    const t = (id: number) => (id ? hex(id) : '-');
    lines.push(
      `  ${name}  ${e.ifname} (ifindex ${e.ifindex})  ingress ${t(e.ingressTable)}  egress ${t(e.egressTable)}  revision ${hex(e.revision)}`,
    );
  }
  lines.push('', 'tables:');
  for (const t of tables(r)) {
    lines.push(`  ${hex(t.id)}  (${t.endpoints.join(', ')})`);
    for (const x of t.rules)
      lines.push(
        `    ${String(x.index).padStart(3)}  ${x.action.padEnd(5)}  ${x.tier.padEnd(8)}  ${x.policy ?? '-'}  ${x.rule}`,
      );
  }
  lines.push('', 'map entries:');
  for (const [map, content] of Object.entries(r.maps)) lines.push(`  ${map.padEnd(15)} ${content.size}`);
  if (r.errors.length) lines.push('', 'errors:', ...r.errors.map((e) => `  ${e}`));
  return lines.join('\n');
}

function json(node: string, r: CompileResult): string {
  return JSON.stringify(
    {
      node,
      endpoints: r.endpoints,
      tables: tables(r),
      maps: Object.fromEntries(Object.entries(r.maps).map(([m, c]) => [m, c.size])),
      policies: r.policies,
      identities: Object.fromEntries(r.identities),
      errors: r.errors,
    },
    null,
    2,
  );
}

export function register(program: Command): void {
  program
    .command('compile')
    .description('compile the state directory for a node and print endpoints, tables and map entry counts')
    .requiredOption('--state <dir>', 'state directory (Kubernetes YAML, netfence.yaml)')
    .option('--node <name>', 'node to compile for (default: $NODE_NAME, else the first Node)')
    .option('--json', 'print JSON')
    .action((f: Flags) => {
      const s = loadState(f.state);
      const node = pickNode(s, f.node);
      if (!s.nodes.some((n) => n.name === node)) throw new Error(`compile node ${node}: no such Node in ${f.state}`);
      const r = compile(s, node, synthesizeEndpoints(s, node));
      process.stdout.write(`${f.json ? json(node, r) : summary(node, r)}\n`);
      if (r.errors.length) process.exitCode = 1;
    });
}
