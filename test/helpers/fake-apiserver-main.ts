// The fake apiserver as a process, for tests whose client runs in another network
// namespace (start it inside that netns). It serves every collection the Kubernetes
// source watches, prints {"url":...} once listening, then answers one JSON line on
// stdout per JSON command line on stdin; it exits when stdin ends.
//   {"op":"put","path":P,"obj":O,"quiet"?:true}   {"op":"remove","path":P,"name":N,"namespace"?:NS,"quiet"?:true}
//   {"op":"compact"}  {"op":"expire","path"?:P}  {"op":"hold","path":P}  {"op":"release","path":P}
//   {"op":"counts","path":P} -> {lists,watches}   {"op":"version"} -> {version} (what the source reports)
import { createInterface } from 'node:readline';
import { objectsVersion, WATCHED_RESOURCES } from '../../src/sources/kubernetes';
import { collectionPath, toKubeObject } from '../../src/sources/kubernetes-resources';
import { FakeApiServer, type Obj } from './fake-apiserver';

export type Command =
  | { op: 'put'; path: string; obj: Obj; quiet?: boolean }
  | { op: 'remove'; path: string; name: string; namespace?: string; quiet?: boolean }
  | { op: 'compact' | 'version' }
  | { op: 'expire'; path?: string }
  | { op: 'hold' | 'release' | 'counts'; path: string };

const server = new FakeApiServer(WATCHED_RESOURCES.map(collectionPath));

function handle(c: Command): Record<string, unknown> {
  switch (c.op) {
    case 'put':
      server.put(c.path, c.obj, c.quiet);
      return {};
    case 'remove':
      server.remove(c.path, c.name, c.namespace, c.quiet);
      return {};
    case 'compact':
      server.compact();
      return {};
    case 'expire':
      server.expireWatches(c.path);
      return {};
    case 'hold':
      server.hold(c.path);
      return {};
    case 'release':
      server.release(c.path);
      return {};
    case 'counts':
      return { lists: server.count(server.lists, c.path), watches: server.count(server.watches, c.path) };
    case 'version':
      return {
        version: objectsVersion(
          WATCHED_RESOURCES.flatMap((r) => server.objects(collectionPath(r)).map((o) => toKubeObject(r, o))),
        ),
      };
  }
}

async function main(): Promise<void> {
  const url = await server.listen(process.argv[2] ?? '127.0.0.1');
  process.stdout.write(JSON.stringify({ url }) + '\n');
  for await (const line of createInterface({ input: process.stdin })) {
    let reply: Record<string, unknown>;
    try {
      reply = { ok: true, ...handle(JSON.parse(line) as Command) };
    } catch (e) {
      reply = { ok: false, error: (e as Error).message };
    }
    process.stdout.write(JSON.stringify(reply) + '\n');
  }
  await server.close();
}

void main();
