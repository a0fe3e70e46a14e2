// Parsing and decoding many files on a worker thread beside the main thread: a cold load
// of 100k pods is mostly YAML parsing and decoding, and the two threads share it. The
// worker lives for one load only, so an idle agent holds no second heap. Its files come
// back as plain data; a document's line finder is rebuilt on the main thread, lazily (only
// a duplicate object's error asks for it), by parsing its file again.
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { decodeObjects, type DecodedDoc } from '../model/snapshot';
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
/** Files the main thread takes at a time: few, so the worker's replies wait little. */
const HERE_BATCH = 16;
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

/** A job's file parsed and decoded on this thread. */
function decodeHere({ file, text }: FileJob): PooledFile {
  const { objects, errors } = parseYamlText(text, file);
  return { docs: decodeObjects(objects), errors };
}

/** Each job's file parsed and decoded (as decodeObjects does), in order: by the main
 *  thread and a worker side by side (none on a single core). The main thread's share needs
 *  no copying between heaps, which for 100k pods costs about as much as their decoding. */
export async function decodeInWorkers(jobs: readonly FileJob[]): Promise<PooledFile[]> {
  const out: PooledFile[] = new Array<PooledFile>(jobs.length);
  let next = 0;
  const take = (size: number): { from: number; batch: FileJob[] } | undefined => {
    if (next >= jobs.length) return undefined;
    const from = next;
    return { from, batch: jobs.slice(from, (next = Math.min(jobs.length, from + size))) };
  };
  const inWorker = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const worker = new Worker(WORKER);
      const pending: NonNullable<ReturnType<typeof take>>[] = [];
      const send = (): void => {
        const b = take(BATCH);
        if (!b) return;
        pending.push(b);
        worker.postMessage(b.batch);
      };
      worker.on('message', (sent: WorkerFile[]) => {
        const { from, batch } = pending.shift()!;
        sent.forEach((f, i) => (out[from + i] = relocated(batch[i], f)));
        send();
        if (pending.length === 0) worker.terminate().then(() => resolve(), reject);
      });
      worker.once('error', (e) => {
        void worker.terminate();
        reject(e);
      });
      // Two batches in flight: the worker has the next one while this thread, busy with a
      // batch of its own, has not read its reply yet.
      send();
      send();
    });
  const here = async (): Promise<void> => {
    for (let b = take(HERE_BATCH); b; b = take(HERE_BATCH)) {
      const { from, batch } = b;
      batch.forEach((job, i) => (out[from + i] = decodeHere(job)));
      // The worker's replies are taken (and its next batches sent) between batches.
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  const workers = Math.min(1, os.availableParallelism() - 1, Math.ceil(jobs.length / BATCH));
  // The worker takes its first batches before this thread takes any.
  await Promise.all([...Array.from({ length: workers }, inWorker), here()]);
  return out;
}
