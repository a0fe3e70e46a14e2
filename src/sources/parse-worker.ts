// A worker of parse-pool.ts: parses and decodes the files it is sent, and sends back each
// file's documents as plain data. A document's line finder (a closure over its text) stays
// here: the errors and warnings that need a line carry it already, and the document keeps
// the index of its YAML object, for the main thread to find lines again if it must.
import { parentPort } from 'node:worker_threads';
import { setInterning } from '../model/intern';
import { decodeObjects } from '../model/snapshot';
import type { FileJob, WorkerFile } from './parse-pool';
import { parseYamlText } from './yaml-docs';

function decodeFile({ file, text }: FileJob): WorkerFile {
  const { objects, errors } = parseYamlText(text, file);
  // Every object of a file has a line finder of its own, and its documents share it.
  const index = new Map(objects.map((o, i) => [o.locate, i]));
  const docs = decodeObjects(objects);
  const objectIndex = docs.map((d) => index.get(d.locate) ?? -1);
  // Set to undefined, not deleted: the object keeps its shape, and the main thread sets it.
  for (const d of docs) d.locate = undefined;
  return { docs, objectIndex, errors };
}

setInterning(false);
parentPort!.on('message', (jobs: FileJob[]) => parentPort!.postMessage(jobs.map(decodeFile)));
