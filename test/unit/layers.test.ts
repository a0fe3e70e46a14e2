// The layer order is a lint rule (eslint.config.mjs LAYERS): an import against it, or an
// import cycle, fails `npm test`. Linting a snippet under a part's path proves the rule bites.
import test from 'ava';
import path from 'node:path';
import { ESLint } from 'eslint';

const root = path.resolve(__dirname, '../../..');
const eslint = new ESLint({ cwd: root });

async function ruleIds(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(root, file) });
  return result.messages.map((m) => m.ruleId ?? m.message);
}

test('a lower part importing a higher one is an error naming the layer order', async (t) => {
  const [result] = await eslint.lintText(
    "import { reconcile } from '../reconcile/apply';\nexport const r = reconcile;\n",
    {
      filePath: path.join(root, 'src/datapath/probe.ts'),
    },
  );
  const hit = result.messages.find((m) => m.ruleId === 'import-x/no-restricted-paths');
  t.truthy(hit, JSON.stringify(result.messages));
  t.regex(hit!.message, /src\/datapath may import only/);
});

test('the model imports neither compile nor the agent', async (t) => {
  t.true(
    (await ruleIds('src/model/probe.ts', "export { compile } from '../compile/compile';\n")).includes(
      'import-x/no-restricted-paths',
    ),
  );
  t.true(
    (await ruleIds('src/model/probe.ts', "export * from '../agent/agent';\n")).includes('import-x/no-restricted-paths'),
  );
});

test('the programs on top may import the layers below', async (t) => {
  t.deepEqual(await ruleIds('src/cli/probe.ts', "export * from '../reconcile/apply';\n"), []);
  t.deepEqual(await ruleIds('src/agent/probe.ts', "export * from '../datapath/bpffs';\n"), []);
});
