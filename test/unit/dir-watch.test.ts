// watchTree: every atomic replace of the same file is seen (recursive fs.watch on Linux
// misses the second one), and files in subdirectories created later are seen too.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { watchTree } from '../../src/sources/dir-watch';

const replace = (file: string, text: string): void => {
  fs.writeFileSync(`${file}.tmp~`, text);
  fs.renameSync(`${file}.tmp~`, file);
};

test('atomic replaces, new subdirectories and their files all notify', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nf-watch-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'a.yaml'), '0');
  let events = 0;
  const w = watchTree(dir, () => events++);
  t.teardown(() => w.close());
  const changed = async (what: string, act: () => void): Promise<void> => {
    const before = events;
    act();
    for (const deadline = Date.now() + 2000; events === before && Date.now() < deadline;)
      await new Promise((r) => setTimeout(r, 10));
    t.true(events > before, what);
  };
  await changed('first replace', () => replace(path.join(dir, 'a.yaml'), '1'));
  await changed('second replace of the same file', () => replace(path.join(dir, 'a.yaml'), '2'));
  await changed('new subdirectory', () => fs.mkdirSync(path.join(dir, 'sub')));
  await changed('file in the new subdirectory', () => fs.writeFileSync(path.join(dir, 'sub', 'b.yaml'), 'x'));
  t.throws(() => watchTree(path.join(dir, 'missing'), () => undefined), {
    message: /watch state directory .*missing: does not exist/,
  });
});
