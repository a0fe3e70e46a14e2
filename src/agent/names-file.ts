// The names file: what the agent knows and the pinned maps cannot hold (policy and rule
// names, which interface is which pod, which address is which pod), written next to the
// agent's runtime state so `netfence inspect` and `netfence flows` can turn ids back into
// names without talking to the agent. bpffs only holds BPF objects, so the file lives in
// /run/netfence/<hash of the bpffs root>/names.json: one per agent, even when several
// lab nodes share a machine.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { CompileResult, CompiledEndpoint, CompiledRuleInfo } from '../compile/output';
import type { Snapshot } from '../model/types';
import { isolationNames, type IsolationNames } from './flows';
import { writeFileAtomic } from './write-atomic';

export const NAMES_FILE_VERSION = 1;
export const DEFAULT_RUN_DIR = '/run/netfence';

export interface PodAddress {
  ip: string;
  namespace: string;
  pod_name: string;
}

export interface NamesFile {
  version: typeof NAMES_FILE_VERSION;
  bpffsRoot: string;
  node: string;
  /** The agent's apply generation these names belong to. */
  generation: number;
  writtenAt: string;
  /** policy_id -> policy name. */
  policies: string[];
  rules: CompiledRuleInfo[];
  endpoints: CompiledEndpoint[];
  /** identity id -> description. */
  identities: Record<string, string>;
  pods: PodAddress[];
  /** What isolation drops blame, per endpoint id and direction (absent in older files). */
  isolation?: IsolationNames;
}

/** /run/netfence/<first 16 hex of sha256(absolute bpffs root)>/names.json */
export function namesFilePath(bpffsRoot: string, runDir = DEFAULT_RUN_DIR): string {
  const hash = createHash('sha256').update(path.resolve(bpffsRoot)).digest('hex').slice(0, 16);
  return path.join(runDir, hash, 'names.json');
}

/** `isolation`: isolationNames of the same compile, when the caller has them. */
export function namesFromCompile(
  compiled: Pick<CompileResult, 'policies' | 'rules' | 'endpoints' | 'identities'>,
  snapshot: Snapshot,
  meta: { bpffsRoot: string; node: string; generation: number },
  isolation: IsolationNames = isolationNames(snapshot, compiled),
  now = new Date(),
): NamesFile {
  const pods: PodAddress[] = [];
  for (const p of snapshot.pods) {
    for (const ip of [...p.ips, ...p.networks.flatMap((n) => n.ips)])
      pods.push({ ip, namespace: p.namespace, pod_name: p.name });
  }
  return {
    version: NAMES_FILE_VERSION,
    bpffsRoot: path.resolve(meta.bpffsRoot),
    node: meta.node,
    generation: meta.generation,
    writtenAt: now.toISOString(),
    policies: compiled.policies,
    rules: compiled.rules,
    endpoints: compiled.endpoints,
    identities: Object.fromEntries(compiled.identities),
    pods,
    isolation,
  };
}

/** Atomic replace: readers never see half a file. */
export async function writeNamesFile(file: string, names: NamesFile): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(names) + '\n');
}

export function readNamesFile(file: string): NamesFile {
  let o: Partial<NamesFile>;
  try {
    o = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<NamesFile>;
  } catch (err) {
    throw new Error(`read names file ${file}: ${(err as Error).message}`);
  }
  if (o.version !== NAMES_FILE_VERSION) {
    throw new Error(
      `read names file ${file}: version: expected ${NAMES_FILE_VERSION}, got ${JSON.stringify(o.version)}`,
    );
  }
  for (const field of ['policies', 'rules', 'endpoints', 'pods'] as const) {
    if (!Array.isArray(o[field])) throw new Error(`read names file ${file}: ${field}: must be an array`);
  }
  return o as NamesFile;
}
