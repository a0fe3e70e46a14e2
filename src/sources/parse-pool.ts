// Parsing and decoding many files on worker threads (one per core, at most two): a cold
// load of 100k pods is mostly YAML parsing and decoding, and the two run side by side
// instead of on the event loop. The workers live for one batch only, so an idle agent holds
// no second heap. Files come back as plain data; a document's line finder is rebuilt on the
// main thread, lazily (only a duplicate object's error asks for it), by parsing its file again.
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { DecodedDoc } from '../model/snapshot';
import type { ValidationError } from '../model/types';
import { parseYamlText } from './yaml-docs';

export interface FileJob {
  file: string;
  text: string;
}

/** A decoded file as a worker sends it. */
export interface WorkerFile {
  /** Without their line finders (`locate` undefined). */
  docs: DecodedDoc[];
  /** Per document, the index of its YAML object in the file (-1: it had no line finder). */
  objectIndex: number[];
  errors: ValidationError[];
}

export interface PooledFile {
  docs: DecodedDoc[];
  errors: ValidationError[];
}

/** Files per message: few enough round trips, small enough to share the work evenly. */
const BATCH = 64;
const WORKER = path.join(__dirname, 'parse-worker.js');

function relocated(job: FileJob, sent: WorkerFile): PooledFile {
  let objects: ReturnType<typeof parseYamlText>['objects'] | undefined;
  const locate = (i: number): DecodedDoc['locate'] =>
    i < 0
      ? undefined
      : (segments) => {
          objects ??= parseYamlText(job.text, job.file).objects;
          return objects[i]?.locate?.(segments);
        };
  sent.docs.forEach((d, i) => (d.locate = locate(sent.objectIndex[i])));
  return { docs: sent.docs, errors: sent.errors };
}

/** Each job's file parsed and decoded (as decodeObjects does), in order. */
export async function decodeInWorkers(jobs: readonly FileJob[]): Promise<PooledFile[]> {
  const out: PooledFile[] = new Array<PooledFile>(jobs.length);
  let next = 0;
  const run = async (): Promise<void> => {
    const worker = new Worker(WORKER);
    try {
      while (next < jobs.length) {
        const from = next;
        const batch = jobs.slice(from, (next = Math.min(jobs.length, from + BATCH)));
        const sent = await new Promise<WorkerFile[]>((resolve, reject) => {
          worker.once('message', resolve);
          worker.once('error', reject);
          worker.postMessage(batch);
        });
        worker.removeAllListeners('error');
        sent.forEach((f, i) => (out[from + i] = relocated(batch[i], f)));
      }
    } finally {
      await worker.terminate();
    }
  };
  const workers = Math.max(1, Math.min(2, os.availableParallelism(), Math.ceil(jobs.length / BATCH)));
  await Promise.all(Array.from({ length: workers }, run));
  return out;
}
