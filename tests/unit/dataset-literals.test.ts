import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadAllContracts } from '../../tasks/src/contracts/index.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
/**
 * The code that must work for any dataset. Dataset-specific code lives in tasks/src/datasets/<name>/;
 * contracts, docs, tests and deployment configuration may name datasets.
 */
const GENERIC = ['tasks/src', 'serving/src', 'dashboard/src', 'monitoring/evidently', 'dags'];
const EXEMPT = ['tasks/src/datasets/'];

function sources(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.(ts|py)$/.test(e.name))
    .map((e) => path.relative(ROOT, path.join(e.parentPath, e.name)))
    .filter((f) => !EXEMPT.some((x) => f.startsWith(x)));
}

/** String literals naming a dataset, outside comments and import paths into the datasets folder. */
function datasetLiterals(text: string, names: readonly string[]): { line: number; text: string }[] {
  const word = new RegExp(`\\b(${names.join('|')})\\b`, 'i');
  const literal = /(['"`])((?:\\.|(?!\1).)*)\1/g;
  const found: { line: number; text: string }[] = [];
  text.split('\n').forEach((line, i) => {
    const code = line.trim();
    if (/^(\/\/|\*|\/\*|#)/.test(code)) return;
    for (const m of code.matchAll(literal)) {
      const value = m[2] as string;
      if (
        /\/datasets\/[a-z_]+\//.test(value) &&
        /^(import|export|from|\}|\s)/.test(code.replace(/^.*?(import|export|from)/, '$1'))
      )
        continue;
      if (word.test(value)) found.push({ line: i + 1, text: code });
    }
  });
  return found;
}

describe('generic code names no dataset', () => {
  it('finds a dataset literal where there is one', () => {
    expect(datasetLiterals("const model = readString(env, 'M', 'churn');", ['churn'])).toHaveLength(1);
    expect(datasetLiterals('// the churn dataset', ['churn'])).toEqual([]);
    expect(datasetLiterals("import { x } from '../datasets/btc/candle.js';", ['btc'])).toEqual([]);
  });

  it('no string literal in the generic code names a shipped dataset', async () => {
    const names = (await loadAllContracts()).map((c) => c.dataset);
    expect(names.length).toBeGreaterThanOrEqual(2);
    const offenders = GENERIC.flatMap(sources).flatMap((file) =>
      datasetLiterals(readFileSync(path.join(ROOT, file), 'utf8'), names).map(
        (o) => `${file}:${o.line}: ${o.text}`,
      ),
    );
    expect(offenders).toEqual([]);
  });
});
