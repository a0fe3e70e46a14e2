// The agent's root-only unix socket: netfence-cni asks "program this endpoint now" (ADD,
// answered only once it is enforced), "forget it" (DEL) and "is it programmed?" (CHECK),
// either as its node bundle does or by forwarding the whole invocation, which the agent
// answers by running the plugin in-process; `netfence flows` subscribes to drop events. Every agent serves it in its run directory
// (agentSocketPath), so `netfence flows` finds it from the bpffs root alone; --socket
// adds a path for the CNI plugin.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { noAnswer } from '../cni/agent-client';
import { runPlugin, type AgentLink } from '../cni/plugin';
import {
  canConnect,
  decodeRequest,
  encode,
  MAX_LINE_BYTES,
  type AgentRequest,
  type CniRequest,
  type CniResponse,
} from '../cni/protocol';
import { namesFilePath } from './names-file';

export interface AgentSocketHandler {
  /** Resolve once the endpoint is programmed; reject to fail the pod's ADD. */
  add(req: CniRequest): Promise<void>;
  /** Forget the endpoint; must be idempotent. */
  del(req: CniRequest): Promise<void>;
  /** True when the endpoint is programmed. */
  check(req: CniRequest): Promise<boolean>;
  /** Takes over a connection that subscribed to flow records (after its ok response). */
  flows(sock: net.Socket): void;
}

/** <run dir of the bpffs root>/agent.sock, next to the names and last-good files. */
export function agentSocketPath(bpffsRoot: string, runDir?: string): string {
  return path.join(path.dirname(namesFilePath(bpffsRoot, runDir)), 'agent.sock');
}

/** Remove a socket file left by a dead agent; refuse to steal a live one. */
async function clearStale(socketPath: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(socketPath);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new Error(`listen agent socket ${socketPath}: exists and is not a socket`);
  if (await canConnect(socketPath, 2000))
    throw new Error(`listen agent socket ${socketPath}: another process is serving it`);
  fs.unlinkSync(socketPath);
}

export class AgentSocket {
  private readonly servers: net.Server[] = [];
  private readonly sockets = new Set<net.Socket>();

  constructor(
    private readonly handler: AgentSocketHandler,
    private readonly onError: (err: Error) => void = () => {},
  ) {}

  /** Serves on one more path (callable once per path). */
  async listen(socketPath: string): Promise<void> {
    fs.mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o700 });
    await clearStale(socketPath);
    const server = net.createServer((s) => this.serve(s));
    // The socket is created by bind(2) inside listen(): a umask makes it 0600 from the
    // first instant (chmod afterwards would leave a window).
    const old = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(socketPath, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      throw new Error(`listen agent socket ${socketPath}: ${(err as Error).message}`);
    } finally {
      process.umask(old);
    }
    fs.chmodSync(socketPath, 0o600);
    server.on('error', (err) => this.onError(err));
    this.servers.push(server);
  }

  async close(): Promise<void> {
    const servers = this.servers.splice(0);
    for (const s of this.sockets) s.destroy();
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }

  private serve(sock: net.Socket): void {
    this.sockets.add(sock);
    sock.on('close', () => this.sockets.delete(sock));
    sock.on('error', () => sock.destroy());
    let buffered = 0;
    sock.on('data', (chunk: Buffer) => {
      buffered += chunk.length;
      if (buffered > MAX_LINE_BYTES) sock.destroy(); // runaway request: drop the client
    });
    const lines = createInterface({ input: sock, crlfDelay: Infinity });
    // readline re-emits the socket's errors (a client gone while it is answered: EPIPE,
    // ECONNRESET); unheard, they would end the agent.
    lines.on('error', () => sock.destroy());
    // Requests on one connection are answered in order.
    let chain = Promise.resolve();
    lines.on('line', (line) => {
      buffered = 0;
      chain = chain.then(async () => {
        if (sock.destroyed) return;
        let req: AgentRequest;
        try {
          req = decodeRequest(line);
        } catch (err) {
          sock.write(encode({ ok: false, error: (err as Error).message }));
          return;
        }
        if (req.op === 'flows') {
          // From here on the connection only carries records to the client; reading goes
          // on so that the client's end (or a runaway client) is seen at once.
          lines.close();
          sock.resume();
          sock.write(encode({ ok: true }));
          this.handler.flows(sock);
          return;
        }
        const res = req.op === 'cni' ? await runPlugin(req.env, req.stdin, this.inProcess) : await this.answer(req);
        if (!sock.destroyed) sock.write(encode(res));
      });
    });
  }

  /** The plugin's link when the agent runs it: the handler, under the plugin's deadline. */
  private readonly inProcess: AgentLink = {
    ask: (socketPath, req, timeoutMs) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(noAnswer(socketPath, timeoutMs)), timeoutMs);
        void this.answer(req)
          .then(resolve)
          .finally(() => clearTimeout(timer));
      }),
    reachable: () => Promise.resolve(true),
  };

  private async answer(req: CniRequest): Promise<CniResponse> {
    try {
      switch (req.op) {
        case 'add':
          await this.handler.add(req);
          return { ok: true };
        case 'del':
          await this.handler.del(req);
          return { ok: true };
        case 'check':
          return (await this.handler.check(req))
            ? { ok: true }
            : {
                ok: false,
                error: `check endpoint ${req.podNamespace}/${req.podName} (${req.containerId}): not programmed`,
              };
      }
    } catch (err) {
      const msg = (err as Error).message ?? String(err);
      return { ok: false, error: `${req.op} endpoint ${req.podNamespace}/${req.podName} (${req.containerId}): ${msg}` };
    }
  }
}
