// `netfence inspect`: the pinned maps of one agent, decoded back into endpoints, tables
// (rules with their peers, ports and counters) and identities, with policy and pod names
// from the agent's names file when it is there.
import type { Command } from 'commander';
import fs from 'node:fs';
import path from 'node:path';
import { readNamesFile, namesFilePath, DEFAULT_RUN_DIR, type NamesFile } from '../agent/names-file';
import { bitmapIndices } from '../compile/bitmap';
import { formatCidr } from '../model/ip';
import { IPPROTO, NF_TABLE_DENY, NfAction, NfEpFlag, NfLocalKind, NfTier } from '../wire/abi';
import { decodeAddrLpmKey, bytesToAddr } from '../wire/addr';
import { decodeU32 } from '../wire/bytes';
import { decodeConfig, type Config } from '../wire/config';
import { sumPerCpuCounters } from '../wire/counters';
import { decodeEndpoint } from '../wire/endpoint';
import { decodeLocal } from '../wire/local';
import {
  decodeCidrKey,
  decodePeerIdentKey,
  decodePortKey,
  decodeRule,
  decodeRuleKey,
  type PortKey,
} from '../wire/tables';
import { DEFAULT_BPFFS_ROOT } from '../datapath/loader';
import type { NativeAddon } from '../datapath/native-api';

export interface InspectRule {
  index: number;
  action: string;
  tier: string;
  tierEnd: number;
  policyId: number;
  ruleId: number;
  policy?: string;
  rule?: string;
  /** Peer identities (with descriptions when known) and CIDRs selecting this rule. */
  identities: { id: number; desc?: string }[];
  cidrs: string[];
  ports: string[];
  packets: string;
  bytes: string;
}

export interface InspectEndpoint {
  ifindex: number;
  ifname?: string;
  pod?: string;
  network?: string;
  id: number;
  ingressTable: number;
  egressTable: number;
  /** Chunks of 256 rules each table spans (0 without a table). */
  ingressChunks: number;
  egressChunks: number;
  flags: string[];
  revision: number;
}

export interface InspectReport {
  bpffsRoot: string;
  names?: { file: string; node: string; generation: number; writtenAt: string };
  config?: Config;
  endpoints: InspectEndpoint[];
  tables: { table: number; usedBy: number[]; rules: InspectRule[] }[];
  identities: { match: string; id: number; desc?: string }[];
  localAddresses: { address: string; kind: string; ifindex: number }[];
  serviceCIDRs: string[];
}

const name = <T extends Record<string, number>>(table: T, v: number): string =>
  (Object.keys(table).find((k) => table[k] === v) ?? String(v)).toLowerCase();

const PROTO_NAMES: Record<number, string> = Object.fromEntries(Object.entries(IPPROTO).map(([k, v]) => [v, k]));

export function portText(k: PortKey): string {
  if (k.proto === undefined) return 'any';
  const proto = PROTO_NAMES[k.proto] ?? `proto-${k.proto}`;
  const bits = k.portBits ?? 0;
  if (bits === 0) return `${proto}/*`;
  if (bits === 16) return `${proto}/${k.port}`;
  return `${proto}/${k.port}-${(k.port ?? 0) + 2 ** (16 - bits) - 1}`;
}

/** Every entry of a pinned map; a map that is not pinned yields nothing. */
function entries(addon: NativeAddon, root: string, map: string): { key: Buffer; value: Buffer }[] {
  const pin = path.join(root, map);
  if (!fs.existsSync(pin)) return [];
  const info = addon.mapOpenPinned(pin);
  try {
    return addon.mapKeys(info.fd).flatMap((key) => {
      const value = addon.mapLookup(info.fd, key);
      return value ? [{ key, value }] : [];
    });
  } finally {
    addon.closeFd(info.fd);
  }
}

export function readPinned(
  addon: NativeAddon,
  root: string,
  loaded?: { file: string; names: NamesFile },
): InspectReport {
  const names = loaded?.names;
  if (!fs.existsSync(path.join(root, 'nf_endpoints'))) {
    throw new Error(`inspect ${root}: no pinned netfence maps (is the agent running with this --bpffs-root?)`);
  }
  const ruleInfo = new Map((names?.rules ?? []).map((r) => [`${r.table}/${r.index}`, r]));
  const epInfo = new Map((names?.endpoints ?? []).map((e) => [e.ifindex, e]));
  const cpus = addon.possibleCpus();

  const cfg = entries(addon, root, 'nf_config').find((e) => decodeU32(e.key) === 0);
  const endpoints = entries(addon, root, 'nf_endpoints')
    .map(({ key, value }): InspectEndpoint => {
      const ifindex = decodeU32(key);
      const ep = decodeEndpoint(value);
      const known = epInfo.get(ifindex);
      return {
        ifindex,
        ...(known && { ifname: known.ifname }),
        ...(known?.pod && { pod: known.pod }),
        ...(known?.network && { network: known.network }),
        ...ep,
        flags: Object.entries(NfEpFlag)
          .filter(([, bit]) => ep.flags & bit)
          .map(([k]) => k.toLowerCase()),
      };
    })
    .sort((a, b) => a.ifindex - b.ifindex);

  const tables = new Map<number, Map<number, InspectRule>>();
  const stats = new Map(
    entries(addon, root, 'nf_rule_stats').map((e) => [e.key.toString('hex'), sumPerCpuCounters(e.value, cpus)]),
  );
  for (const { key, value } of entries(addon, root, 'nf_rules')) {
    const k = decodeRuleKey(key);
    const r = decodeRule(value);
    const info = ruleInfo.get(`${k.table}/${k.index}`);
    const c = stats.get(key.toString('hex'));
    if (!tables.has(k.table)) tables.set(k.table, new Map());
    tables.get(k.table)!.set(k.index, {
      index: k.index,
      action: name(NfAction, r.action),
      tier: name(NfTier, r.tier),
      tierEnd: r.tierEnd,
      policyId: r.policyId,
      ruleId: r.ruleId,
      policy: info?.policy ?? names?.policies[r.policyId],
      ...(info && { rule: info.rule }),
      identities: [],
      cidrs: [],
      ports: [],
      packets: String(c?.packets ?? 0n),
      bytes: String(c?.bytes ?? 0n),
    });
  }
  const rulesOf = (k: { table: number; chunk: number }, bitmap: Buffer) =>
    bitmapIndices(bitmap, k.chunk).flatMap((i) => tables.get(k.table)?.get(i) ?? []);
  const identityDesc = (id: number) => names?.identities[String(id)];
  for (const { key, value } of entries(addon, root, 'nf_peer_ident')) {
    const k = decodePeerIdentKey(key);
    const desc = identityDesc(k.identity);
    for (const r of rulesOf(k, value)) r.identities.push({ id: k.identity, ...(desc && { desc }) });
  }
  for (const { key, value } of entries(addon, root, 'nf_peer_cidr')) {
    const k = decodeCidrKey(key);
    for (const r of rulesOf(k, value)) r.cidrs.push(formatCidr(k.cidr));
  }
  for (const { key, value } of entries(addon, root, 'nf_ports')) {
    const k = decodePortKey(key);
    for (const r of rulesOf(k, value)) r.ports.push(portText(k));
  }
  const usedBy = (table: number) =>
    endpoints.filter((e) => e.ingressTable === table || e.egressTable === table).map((e) => e.ifindex);

  const identities = [
    ...entries(addon, root, 'nf_ident_exact').map(({ key, value }) => ({
      match: bytesToAddr(key),
      id: decodeU32(value),
    })),
    ...entries(addon, root, 'nf_ident_lpm').map(({ key, value }) => ({
      match: formatCidr(decodeAddrLpmKey(key)),
      id: decodeU32(value),
    })),
  ].map((i) => ({ ...i, ...(identityDesc(i.id) && { desc: identityDesc(i.id) }) }));

  return {
    bpffsRoot: root,
    ...(loaded && {
      names: {
        file: loaded.file,
        node: loaded.names.node,
        generation: loaded.names.generation,
        writtenAt: loaded.names.writtenAt,
      },
    }),
    ...(cfg && { config: decodeConfig(cfg.value) }),
    endpoints,
    tables: [...tables.entries()]
      .sort(([a], [b]) => a - b)
      .map(([table, rules]) => ({
        table,
        usedBy: usedBy(table),
        rules: [...rules.values()]
          .sort((a, b) => a.index - b.index)
          .map((r) => ({
            ...r,
            identities: r.identities.sort((a, b) => a.id - b.id),
            cidrs: r.cidrs.sort(),
            ports: r.ports.sort(),
          })),
      })),
    identities: identities.sort((a, b) => a.id - b.id || a.match.localeCompare(b.match)),
    localAddresses: entries(addon, root, 'nf_local_addrs').map(({ key, value }) => {
      const l = decodeLocal(value);
      return { address: bytesToAddr(key), kind: name(NfLocalKind, l.kind), ifindex: l.ifindex };
    }),
    serviceCIDRs: entries(addon, root, 'nf_svc_cidrs')
      .map(({ key }) => formatCidr(decodeAddrLpmKey(key)))
      .sort(),
  };
}

/** The names file for a bpffs root, or undefined when the agent has not written one. */
export function loadNames(
  bpffsRoot: string,
  file?: string,
  runDir = DEFAULT_RUN_DIR,
): { file: string; names?: NamesFile } {
  const f = file ?? namesFilePath(bpffsRoot, runDir);
  if (!file && !fs.existsSync(f)) return { file: f };
  return { file: f, names: readNamesFile(f) };
}

export function formatReport(r: InspectReport): string {
  const out: string[] = [`bpffs root ${r.bpffsRoot}`];
  if (r.names) out.push(`names: node ${r.names.node}, generation ${r.names.generation} (${r.names.file})`);
  else out.push('names: none (policy and pod names unavailable)');
  out.push('', 'ENDPOINTS');
  for (const e of r.endpoints) {
    const who = e.pod ? `${e.pod}${e.network ? ` on ${e.network}` : ''}` : (e.ifname ?? '');
    const table = (id: number, chunks: number) =>
      id === NF_TABLE_DENY ? `${id} (deny all: over capacity)` : `${id}${chunks > 1 ? ` (${chunks} chunks)` : ''}`;
    out.push(
      `  ${e.ifindex} ${e.ifname ?? '?'}  id=${e.id} ingress=${table(e.ingressTable, e.ingressChunks)} egress=${table(e.egressTable, e.egressChunks)} rev=${e.revision} [${e.flags.join(',')}] ${who}`.trimEnd(),
    );
  }
  out.push('', 'TABLES');
  for (const t of r.tables) {
    out.push(`  table ${t.table} (endpoints ${t.usedBy.join(', ') || 'none'})`);
    for (const rule of t.rules) {
      const peers =
        [...rule.identities.map((i) => i.desc ?? `identity ${i.id}`), ...rule.cidrs].join(', ') || 'nothing';
      out.push(
        `    [${rule.index}] ${rule.tier} ${rule.action} ${rule.policy ?? `policy#${rule.policyId}`}${rule.rule ? ` ${rule.rule}` : ''}` +
          `  peers: ${peers}  ports: ${rule.ports.join(', ') || 'none'}  packets=${rule.packets}`,
      );
    }
  }
  out.push('', 'IDENTITIES');
  for (const i of r.identities) out.push(`  ${i.match} -> ${i.id}${i.desc ? ` ${i.desc}` : ''}`);
  if (r.serviceCIDRs.length) out.push('', `SERVICE CIDRS ${r.serviceCIDRs.join(', ')}`);
  return out.join('\n') + '\n';
}

export function register(program: Command): void {
  program
    .command('inspect')
    .description("decode an agent's pinned maps into endpoints, tables, rules and identities")
    .option('--bpffs-root <path>', 'bpffs directory of the pinned maps', DEFAULT_BPFFS_ROOT)
    .option('--names <file>', 'names file (default: /run/netfence/<hash of the bpffs root>/names.json)')
    .option('--json', 'JSON output')
    .action(async (opts: { bpffsRoot: string; names?: string; json?: boolean }) => {
      const { native } = await import('../datapath/native');
      const { file, names } = loadNames(opts.bpffsRoot, opts.names);
      const report = readPinned(native, opts.bpffsRoot, names && { file, names });
      process.stdout.write(opts.json ? JSON.stringify(report, null, 2) + '\n' : formatReport(report));
    });
}
