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

/** A decoded document as a worker sends it: what the main thread restores (its file,
 *  origin and line finder, empty lists, copies of its identity) is left out, since copying
 *  between heaps costs by the field. A tuple: an object would also send every key's name.
 *  Sent as JSON text (absent: null), which this thread parses in about 0.6 times the time
 *  a structured clone of the same documents takes to deserialize. */
export type WireDoc = [
  id: string | null,
  /** null: the id. */
  object: string | null,
  /** null: not loaded; 0: the id. */
  key: string | 0 | null,
  collection: DecodedDoc['collection'] | null,
  value: DecodedDoc['value'] | null,
  config: DecodedDoc['config'] | null,
  segments: DecodedDoc['segments'] | null,
  errors: DecodedDoc['errors'] | null,
  warnings: DecodedDoc['warnings'] | null,
  /** The index of its YAML object in the file (-1: it had no line finder). */
  objectIndex: number,
];

/** A decoded file as a worker sends it. */
export interface WorkerFile {
  docs: WireDoc[];
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

const NONE: readonly never[] = Object.freeze([]);

/** A worker's file as decodeObjects gives it on this thread. A document's line finder
 *  parses its file again, lazily (only an error on a duplicate object asks for one). */
function unpacked(job: FileJob, sent: WorkerFile): PooledFile {
  let objects: ReturnType<typeof parseYamlText>['objects'] | undefined;
  const origin = { file: job.file };
  const docs = sent.docs.map(([id, object, key, collection, value, config, segments, errors, warnings, at]) => {
    const d: DecodedDoc = { object: object ?? id!, file: job.file, errors: errors ?? NONE, warnings: warnings ?? NONE };
    if (at >= 0)
      d.locate = (s) => {
        objects ??= parseYamlText(job.text, job.file).objects;
        return objects[at]?.locate?.(s);
      };
    if (segments) d.segments = segments;
    if (id !== null) d.id = id;
    if (key !== null) {
      d.key = key === 0 ? id! : key;
      d.origin = origin;
    }
    if (collection) {
      d.collection = collection;
      d.value = value ?? undefined;
    }
    if (config) d.config = config;
    return d;
  });
  return { docs, errors: sent.errors };
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
      worker.on('message', (text: string) => {
        const sent = JSON.parse(text) as WorkerFile[];
        const { from, batch } = pending.shift()!;
        sent.forEach((f, i) => (out[from + i] = unpacked(batch[i], f)));
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
