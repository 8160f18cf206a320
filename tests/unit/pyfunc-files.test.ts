import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isDriftwoodError } from '../../tasks/src/errors.js';
import { fitTransform, type Row } from '../../tasks/src/features/transform.js';
import {
  classifierFolderFiles,
  PYFUNC_REQUIREMENTS,
  pyfuncCodeFiles,
  pyfuncPackageDir,
} from '../../tasks/src/train/mlmodel.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const rows: Row[] = Array.from({ length: 40 }, (_, i) => ({
  tenure: i % 7 === 0 ? null : i,
  spend: (i * 37) % 11,
  plan: i % 3 === 0 ? 'pro' : 'basic',
  extra: 'not an input',
}));
const state = fitTransform(
  rows,
  { numeric: ['tenure', 'spend'], categorical: ['plan'] },
  { minCategoryShare: 0 },
);

/** The files that give a classifier version MLflow's python_function flavor (issue 24). */
describe('python_function files of a model folder', () => {
  it('pins the loader requirements as requirements/mlflow.lock does', () => {
    const lock = readFileSync(path.join(ROOT, 'requirements', 'mlflow.lock'), 'utf8');
    for (const pin of PYFUNC_REQUIREMENTS) {
      const [name] = pin.split('==');
      expect(lock).toMatch(new RegExp(`^${name}==`, 'm'));
      expect(lock.split('\n')).toContain(pin);
    }
  });

  it('ships every Python file of the package under code/, found from the tasks package', async () => {
    expect(pyfuncPackageDir()).toBe(path.join(ROOT, 'python', 'driftwood_pyfunc') + path.sep);
    const files = await pyfuncCodeFiles();
    const expected = readdirSync(pyfuncPackageDir())
      .filter((f) => f.endsWith('.py'))
      .map((f) => `code/driftwood_pyfunc/${f}`);
    expect(Object.keys(files).sort()).toEqual(expected.sort());
    expect(files['code/driftwood_pyfunc/__init__.py']).toContain('def _load_pyfunc(');
  });

  it('refuses a missing package with a message naming where it looked', async () => {
    const err = await pyfuncCodeFiles('/nonexistent/driftwood_pyfunc').catch((e: unknown) => e);
    expect(isDriftwoodError(err) && err.code).toBe('CONFIG_INVALID');
    expect((err as Error).message).toMatch(/\/nonexistent\/driftwood_pyfunc.*rebuild the tasks image/);
  });

  it('writes an MLmodel with the native flavor first, python_function, the env and the example', async () => {
    const files = await classifierFolderFiles({
      state,
      kind: 'gbdt',
      modelId: 'm-1',
      runId: 'r-1',
      createdAt: new Date('2026-12-07T10:00:00Z'),
      exampleRows: rows,
    });
    const mlmodel = files.MLmodel as string;
    expect(mlmodel).toMatch(/^flavors:\n {2}driftwood_gbdt:\n {4}format: driftwood-gbdt\n/m);
    expect(mlmodel).toContain(
      [
        '  python_function:',
        '    loader_module: driftwood_pyfunc',
        '    code: code',
        '    env:',
        '      conda: conda.yaml',
        '      virtualenv: python_env.yaml',
        "    python_version: '3.11'",
      ].join('\n'),
    );
    expect(mlmodel).toContain('  artifact_path: input_example.json\n');
    expect(mlmodel).toContain(`'[{"type":"tensor","tensor-spec":{"dtype":"float64","shape":[-1]}}]'`);
    // MLmodel is uploaded last, once everything it names is there.
    expect(Object.keys(files).at(-1)).toBe('MLmodel');
    expect(files['requirements.txt']).toBe(`${PYFUNC_REQUIREMENTS.join('\n')}\n`);
    expect(files['conda.yaml']).toContain(`  - ${PYFUNC_REQUIREMENTS[1]}\n`);
    expect(files['python_env.yaml']).toMatch(/^python: '3\.11'\n[\s\S]*- -r requirements.txt\n$/);
    // The signature's columns only (not `extra`), a missing number as null, five rows.
    expect(JSON.parse(files['input_example.json'] as string)).toEqual({
      columns: ['tenure', 'spend', 'plan'],
      data: rows.slice(0, 5).map((r) => [r.tenure, r.spend, r.plan]),
    });
    expect(JSON.parse(files['serving_input_example.json'] as string).dataframe_split.data[0]).toEqual([
      null,
      0,
      'pro',
    ]);
  });
});
