// The request/response protocol of the agent's unix socket, one JSON object per line, one
// response line per request, in order. netfence-cni's executable (cni/netfence-cni.c)
// forwards its whole invocation ("cni": CNI_* environment and stdin), which the agent
// answers by running the plugin in-process; the node bundle (its fallback) asks
// add/del/check. `netfence flows` asks "flows", after whose response the connection carries
// one flow record (JSON) per line until either end closes it. Kept free of dependencies:
// the plugin bundle ships with only this file and node.
import net from 'node:net';

export const DEFAULT_AGENT_SOCKET = '/run/netfence/agent.sock';
/** Longest request line the agent reads (prevResult included). */
export const MAX_LINE_BYTES = 1 << 20;

export type CniOp = 'add' | 'del' | 'check';

export interface CniRequest {
  op: CniOp;
  containerId: string;
  /** Path of the container's network namespace (may be empty on DEL). */
  netns: string;
  /** Interface name inside the container (CNI_IFNAME). */
  ifName: string;
  /** The CNI network's name (netconf `name`): with Multus, which attachment this is.
   *  Optional: plugins before it did not send it. */
  network?: string;
  podNamespace: string;
  podName: string;
  /** The previous plugin's result (ADD and CHECK). */
  prevResult?: unknown;
}

/** Subscribe to drop events (Hubble-style flow records). */
export interface FlowsRequest {
  op: 'flows';
}

/** One plugin invocation, as the runtime made it: the CNI_* variables and stdin. */
export interface PluginRequest {
  op: 'cni';
  env: Record<string, string>;
  stdin: string;
}

export type AgentRequest = CniRequest | FlowsRequest | PluginRequest;

export type CniResponse = { ok: true } | { ok: false; error: string };

/** What the plugin writes and exits with (the answer to a PluginRequest). */
export interface PluginAnswer {
  exitCode: number;
  stdout: string;
  stderr: string;
}

function pluginRequest(r: Record<string, unknown>): PluginRequest {
  const env = r.env;
  if (typeof env !== 'object' || env === null || Array.isArray(env)) throw new Error('env: must be an object');
  for (const [k, v] of Object.entries(env)) {
    if (!k.startsWith('CNI_')) throw new Error(`env: ${k}: only CNI_* variables are forwarded`);
    if (typeof v !== 'string') throw new Error(`env: ${k}: must be a string`);
  }
  return { op: 'cni', env: env as Record<string, string>, stdin: str(r, 'stdin', false) };
}

function str(o: Record<string, unknown>, field: string, required: boolean): string {
  const v = o[field];
  if (v === undefined && !required) return '';
  if (typeof v !== 'string') throw new Error(`${field}: must be a string`);
  if (required && v === '') throw new Error(`${field}: must not be empty`);
  return v;
}

/** Parses and validates one request line; throws "decode agent request: field: cause". */
export function decodeRequest(line: string): AgentRequest {
  try {
    const o: unknown = JSON.parse(line);
    if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new Error('not a JSON object');
    const r = o as Record<string, unknown>;
    const op = r.op;
    if (op === 'flows') return { op };
    if (op === 'cni') return pluginRequest(r);
    if (op !== 'add' && op !== 'del' && op !== 'check')
      throw new Error(`op: must be add, del, check, cni or flows, got ${JSON.stringify(op)}`);
    const attached = op !== 'del'; // DEL may come after the netns is gone
    return {
      op,
      containerId: str(r, 'containerId', true),
      netns: str(r, 'netns', attached),
      ifName: str(r, 'ifName', true),
      ...(r.network !== undefined && { network: str(r, 'network', true) }),
      podNamespace: str(r, 'podNamespace', false),
      podName: str(r, 'podName', false),
      ...(r.prevResult !== undefined && { prevResult: r.prevResult }),
    };
  } catch (err) {
    throw new Error(`decode agent request: ${(err as Error).message}`);
  }
}

export function decodeResponse(line: string): CniResponse {
  const o = JSON.parse(line) as Partial<{ ok: unknown; error: unknown }>;
  if (o.ok === true) return { ok: true };
  if (o.ok === false) return { ok: false, error: typeof o.error === 'string' ? o.error : 'unknown error' };
  throw new Error('decode cni response: ok: must be a boolean');
}

export function encode(msg: AgentRequest | CniResponse | PluginAnswer): string {
  return JSON.stringify(msg) + '\n';
}

/** Whether something accepts connections on the socket (stale-file and STATUS probes). */
export function canConnect(socketPath: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    const done = (ok: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}
