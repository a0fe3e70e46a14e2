// netfence-cni's side of the agent socket: one request, one response line, a deadline.
import net from 'node:net';
import { decodeResponse, encode, type CniRequest, type CniResponse } from './protocol';

/** The agent could not be asked (no socket, refused, timed out, hung up). */
export class AgentUnreachableError extends Error {}

/** The agent did not answer within its deadline (here, or in the agent answering in-process). */
export function noAnswer(socketPath: string, timeoutMs: number): AgentUnreachableError {
  return new AgentUnreachableError(`ask agent ${socketPath}: no answer within ${timeoutMs} ms`);
}

export function askAgent(socketPath: string, req: CniRequest, timeoutMs: number): Promise<CniResponse> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(socketPath);
    let buf = '';
    let settled = false;
    const finish = (err: Error | undefined, res?: CniResponse) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(res!);
    };
    const timer = setTimeout(() => finish(noAnswer(socketPath, timeoutMs)), timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(encode(req)));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      try {
        finish(undefined, decodeResponse(buf.slice(0, nl)));
      } catch (err) {
        finish(new AgentUnreachableError(`ask agent ${socketPath}: ${(err as Error).message}`));
      }
    });
    sock.on('error', (err) => finish(new AgentUnreachableError(`ask agent ${socketPath}: ${err.message}`)));
    sock.on('close', () =>
      finish(new AgentUnreachableError(`ask agent ${socketPath}: connection closed without an answer`)),
    );
  });
}
