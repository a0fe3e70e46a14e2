// netfence-cni: a chained CNI plugin (spec 1.0/1.1). It creates nothing; it makes pod
// start-up wait until the agent enforces policy on the new endpoint (fail closed), and
// passes the previous plugin's result through unchanged. The one implementation of its
// CNI semantics: the agent runs it for the plugin executable's forwarded invocations, the
// node bundle when the agent cannot answer.
import {
  canConnect,
  DEFAULT_AGENT_SOCKET,
  type CniOp,
  type CniRequest,
  type CniResponse,
  type PluginAnswer,
} from './protocol';
import { AgentUnreachableError, askAgent } from './agent-client';

/** How the plugin reaches the agent that enforces its pods. */
export interface AgentLink {
  /** Rejects with AgentUnreachableError when the agent cannot be asked within timeoutMs. */
  ask(socketPath: string, req: CniRequest, timeoutMs: number): Promise<CniResponse>;
  /** Whether the agent accepts requests now (STATUS). */
  reachable(socketPath: string, timeoutMs: number): Promise<boolean>;
}

/** Over the agent socket (the node bundle). */
export const socketLink: AgentLink = { ask: askAgent, reachable: canConnect };

export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
/** The version we answer in when the caller's is unknown or unsupported. */
export const LATEST_VERSION = '1.1.0';
const DEFAULT_TIMEOUT_MS = 15_000;
/** DEL and STATUS never wait longer on the agent: pod removal must not hang on a stuck agent. */
export const BRIEF_TIMEOUT_MS = 2_000;
/** Keys the runtime (libcni) or a conflist may legitimately pass, plus ours; others are errors.
 *  libcni's GC passes the valid attachments under both names (the spec's and an older one). */
const KNOWN_KEYS = new Set([
  'cniVersion',
  'name',
  'type',
  'args',
  'capabilities',
  'runtimeConfig',
  'prevResult',
  'cni.dev/valid-attachments',
  'cni.dev/attachments',
  'agentSocket',
  'agentTimeoutMs',
  'failOpen',
]);

/** CNI well-known error codes (spec "Error"), plus ours from 100 up. */
export const CniCode = {
  INCOMPATIBLE_VERSION: 1,
  INVALID_ENV: 4,
  DECODE: 6,
  INVALID_CONFIG: 7,
  TRY_AGAIN_LATER: 11,
  NOT_AVAILABLE: 50,
  AGENT_REFUSED: 100,
  NOT_PROGRAMMED: 101,
} as const;

export interface NetConf {
  cniVersion: string;
  name?: string;
  type?: string;
  /** Agent socket (default /run/netfence/agent.sock). */
  agentSocket: string;
  /** How long ADD/CHECK/DEL wait for the agent (default 15000). */
  agentTimeoutMs: number;
  /** Let pods start when the agent cannot be asked (default false: fail closed). */
  failOpen: boolean;
  prevResult?: unknown;
}

/** stderr carries diagnostics (the runtime logs it). */
export type PluginOutput = PluginAnswer;

class CniError extends Error {
  constructor(
    readonly code: number,
    msg: string,
    readonly details = '',
  ) {
    super(msg);
  }
}

function decodeConf(stdin: string): Record<string, unknown> {
  let o: unknown;
  try {
    o = JSON.parse(stdin);
  } catch (err) {
    throw new CniError(CniCode.DECODE, 'decode network config: invalid JSON', (err as Error).message);
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o))
    throw new CniError(CniCode.DECODE, 'decode network config: not a JSON object');
  return o as Record<string, unknown>;
}

const supported = (v: unknown): v is string => (SUPPORTED_VERSIONS as readonly unknown[]).includes(v);

/** Versions compare by their place in SUPPORTED_VERSIONS (ascending); both must be in it. */
const atLeast = (v: string, min: string) =>
  SUPPORTED_VERSIONS.indexOf(v as never) >= SUPPORTED_VERSIONS.indexOf(min as never);

/** o.cniVersion is a supported version (checked first, to answer in it). */
function parseConf(o: Record<string, unknown> & { cniVersion: string }): NetConf {
  const bad = (field: string, want: string) =>
    new CniError(CniCode.INVALID_CONFIG, `read network config: ${field}: must be ${want}`);
  const unknown = Object.keys(o).filter((k) => !KNOWN_KEYS.has(k));
  if (unknown.length > 0) {
    throw new CniError(
      CniCode.INVALID_CONFIG,
      `read network config: ${unknown.join(', ')}: unknown key${unknown.length > 1 ? 's' : ''}`,
      `netfence-cni accepts ${[...KNOWN_KEYS].join(', ')}`,
    );
  }
  if (o.agentSocket !== undefined && (typeof o.agentSocket !== 'string' || o.agentSocket === ''))
    throw bad('agentSocket', 'a non-empty string');
  if (o.agentTimeoutMs !== undefined && !(typeof o.agentTimeoutMs === 'number' && o.agentTimeoutMs > 0))
    throw bad('agentTimeoutMs', 'a positive number');
  if (o.failOpen !== undefined && typeof o.failOpen !== 'boolean') throw bad('failOpen', 'a boolean');
  return {
    cniVersion: o.cniVersion,
    name: typeof o.name === 'string' ? o.name : undefined,
    type: typeof o.type === 'string' ? o.type : undefined,
    agentSocket: (o.agentSocket as string | undefined) ?? DEFAULT_AGENT_SOCKET,
    agentTimeoutMs: (o.agentTimeoutMs as number | undefined) ?? DEFAULT_TIMEOUT_MS,
    failOpen: (o.failOpen as boolean | undefined) ?? false,
    prevResult: o.prevResult,
  };
}

/** CNI_ARGS: "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;IgnoreUnknown=1". */
export function parseCniArgs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

function need(env: NodeJS.ProcessEnv, name: string): string {
  const v = env[name];
  if (!v) throw new CniError(CniCode.INVALID_ENV, `read environment: ${name}: required`);
  return v;
}

function request(op: CniOp, env: NodeJS.ProcessEnv, conf: NetConf): CniRequest {
  const args = parseCniArgs(env.CNI_ARGS ?? '');
  // The agent enforces Kubernetes pods: without the kubelet's pod reference it cannot, so
  // say so now rather than after the agent's timeout. DEL goes by container ID alone.
  if (op !== 'del') {
    const missing = ['K8S_POD_NAMESPACE', 'K8S_POD_NAME'].filter((k) => !args[k]);
    if (missing.length > 0) {
      throw new CniError(
        CniCode.INVALID_ENV,
        `read environment: CNI_ARGS: ${missing.join(' and ')} required`,
        'netfence-cni serves Kubernetes pods: the kubelet passes K8S_POD_NAMESPACE and K8S_POD_NAME',
      );
    }
  }
  return {
    op,
    containerId: need(env, 'CNI_CONTAINERID'),
    netns: op === 'del' ? (env.CNI_NETNS ?? '') : need(env, 'CNI_NETNS'),
    ifName: need(env, 'CNI_IFNAME'),
    ...(conf.name && { network: conf.name }),
    podNamespace: args.K8S_POD_NAMESPACE ?? '',
    podName: args.K8S_POD_NAME ?? '',
    ...(conf.prevResult !== undefined && { prevResult: conf.prevResult }),
  };
}

async function ask(
  link: AgentLink,
  conf: NetConf,
  req: CniRequest,
  timeoutMs = conf.agentTimeoutMs,
): Promise<{ ok: true } | { ok: false; error: string; unreachable: boolean }> {
  try {
    const res = await link.ask(conf.agentSocket, req, timeoutMs);
    return res.ok ? res : { ...res, unreachable: false };
  } catch (err) {
    if (err instanceof AgentUnreachableError) return { ok: false, error: err.message, unreachable: true };
    throw err;
  }
}

function who(req: CniRequest): string {
  return req.podName ? `${req.podNamespace}/${req.podName}` : req.containerId;
}

/** VERSION needs no config (the runtime may send none): the caller's version if we speak it, else ours. */
function versionOutput(stdin: string): PluginOutput {
  const asked = stdin.trim() === '' ? undefined : decodeConf(stdin).cniVersion;
  const cniVersion = supported(asked) ? asked : LATEST_VERSION;
  return {
    exitCode: 0,
    stdout: JSON.stringify({ cniVersion, supportedVersions: SUPPORTED_VERSIONS }) + '\n',
    stderr: '',
  };
}

/** Commands the spec introduced after the first supported version. */
const SINCE: Record<string, string> = { CHECK: '0.4.0', STATUS: '1.1.0', GC: '1.1.0' };

export async function runPlugin(
  env: NodeJS.ProcessEnv,
  stdin: string,
  link: AgentLink = socketLink,
): Promise<PluginOutput> {
  // Errors are answered in the caller's version when we speak it, else in ours.
  let answerIn = LATEST_VERSION;
  try {
    const command = env.CNI_COMMAND;
    if (!command) throw new CniError(CniCode.INVALID_ENV, 'read environment: CNI_COMMAND: required');
    if (command === 'VERSION') return versionOutput(stdin);
    const raw = decodeConf(stdin);
    if (!supported(raw.cniVersion)) {
      throw new CniError(
        CniCode.INCOMPATIBLE_VERSION,
        `incompatible CNI version ${JSON.stringify(raw.cniVersion)}`,
        `supported: ${SUPPORTED_VERSIONS.join(', ')}`,
      );
    }
    answerIn = raw.cniVersion;
    const conf = parseConf({ ...raw, cniVersion: raw.cniVersion });
    const since = SINCE[command];
    if (since && !atLeast(conf.cniVersion, since)) {
      throw new CniError(
        CniCode.INCOMPATIBLE_VERSION,
        `${command} needs CNI version ${since} or later, config is ${conf.cniVersion}`,
      );
    }
    switch (command) {
      case 'ADD':
        return await add(link, env, conf);
      case 'DEL':
        return await del(link, env, conf);
      case 'CHECK':
        return await check(link, env, conf);
      case 'GC':
        // Stale endpoints are found and dropped by the agent's own endpoint discovery.
        return { exitCode: 0, stdout: '', stderr: '' };
      case 'STATUS':
        return await status(link, conf);
      default:
        throw new CniError(CniCode.INVALID_ENV, `read environment: CNI_COMMAND: unknown command ${command}`);
    }
  } catch (err) {
    const e = err instanceof CniError ? err : new CniError(CniCode.TRY_AGAIN_LATER, (err as Error).message);
    const out = { cniVersion: answerIn, code: e.code, msg: e.message, ...(e.details && { details: e.details }) };
    return { exitCode: 1, stdout: JSON.stringify(out) + '\n', stderr: '' };
  }
}

async function add(link: AgentLink, env: NodeJS.ProcessEnv, conf: NetConf): Promise<PluginOutput> {
  if (conf.prevResult === undefined) {
    throw new CniError(
      CniCode.INVALID_CONFIG,
      'read network config: prevResult: required (netfence-cni must be chained after an interface plugin)',
    );
  }
  const req = request('add', env, conf);
  const res = await ask(link, conf, req);
  let stderr = '';
  if (!res.ok) {
    if (!(res.unreachable && conf.failOpen)) {
      const code = res.unreachable ? CniCode.TRY_AGAIN_LATER : CniCode.AGENT_REFUSED;
      throw new CniError(
        code,
        `program endpoint ${who(req)}: ${res.unreachable ? 'netfence agent unreachable' : 'netfence agent refused'}`,
        res.error,
      );
    }
    stderr = `netfence-cni: failOpen: pod ${who(req)} starts unenforced: ${res.error}\n`;
  }
  // Passthrough: the previous plugin's result, unchanged.
  return { exitCode: 0, stdout: JSON.stringify(conf.prevResult) + '\n', stderr };
}

async function del(link: AgentLink, env: NodeJS.ProcessEnv, conf: NetConf): Promise<PluginOutput> {
  const req = request('del', env, conf);
  const res = await ask(link, conf, req, Math.min(conf.agentTimeoutMs, BRIEF_TIMEOUT_MS));
  // DEL must not block pod removal: the agent drops endpoints whose interface is gone anyway.
  const stderr = res.ok ? '' : `netfence-cni: forget endpoint ${who(req)}: ${res.error}\n`;
  return { exitCode: 0, stdout: '', stderr };
}

async function check(link: AgentLink, env: NodeJS.ProcessEnv, conf: NetConf): Promise<PluginOutput> {
  if (conf.prevResult === undefined)
    throw new CniError(CniCode.INVALID_CONFIG, 'read network config: prevResult: required for CHECK');
  const req = request('check', env, conf);
  const res = await ask(link, conf, req);
  if (res.ok || (res.unreachable && conf.failOpen)) return { exitCode: 0, stdout: '', stderr: '' };
  const code = res.unreachable ? CniCode.TRY_AGAIN_LATER : CniCode.NOT_PROGRAMMED;
  throw new CniError(
    code,
    `check endpoint ${who(req)}: ${res.unreachable ? 'netfence agent unreachable' : 'not enforced'}`,
    res.error,
  );
}

async function status(link: AgentLink, conf: NetConf): Promise<PluginOutput> {
  // Whether ADDs can be served right now: the agent accepts connections.
  if ((await link.reachable(conf.agentSocket, Math.min(conf.agentTimeoutMs, BRIEF_TIMEOUT_MS))) || conf.failOpen)
    return { exitCode: 0, stdout: '', stderr: '' };
  throw new CniError(CniCode.NOT_AVAILABLE, `status: netfence agent unreachable at ${conf.agentSocket}`);
}
