// A worker of parse-pool.ts: parses and decodes the files it is sent, and sends back each
// file's documents as JSON text, packed (WireDoc). A document's line finder (a closure over its text) stays
// here: the errors and warnings that need a line carry it already, and the document keeps
// the index of its YAML object, for the main thread to find lines again if it must.
import { parentPort } from 'node:worker_threads';
import { setInterning } from '../model/intern';
import { decodeObjects, type DecodedDoc } from '../model/snapshot';
import type { FileJob, WireDoc, WorkerFile } from './parse-pool';
import { parseYamlText } from './yaml-docs';

function packed(d: DecodedDoc, objectIndex: number): WireDoc {
  const { id, object, key, errors, warnings } = d;
  return [
    id ?? null,
    object === id ? null : object,
    key === undefined ? null : key === id ? 0 : key,
    d.collection ?? null,
    d.value ?? null,
    d.config ?? null,
    d.segments ?? null,
    errors.length ? errors : null,
    warnings.length ? warnings : null,
    objectIndex,
  ];
}

function decodeFile({ file, text }: FileJob): WorkerFile {
  const { objects, errors } = parseYamlText(text, file);
  // Every object of a file has a line finder of its own, and its documents share it.
  const index = new Map(objects.map((o, i) => [o.locate, i]));
  return { docs: decodeObjects(objects).map((d) => packed(d, index.get(d.locate) ?? -1)), errors };
}

setInterning(false);
parentPort!.on('message', (jobs: FileJob[]) => parentPort!.postMessage(JSON.stringify(jobs.map(decodeFile))));
