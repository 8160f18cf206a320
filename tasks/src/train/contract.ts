import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

/** The dataset contract as the run records it: the file's text, its version and digest. */
export interface ContractSource {
  file: string;
  text: string;
  version: string | undefined;
  sha256: string;
}

/**
 * Reads `contracts/<dataset>.yaml` (the one ingest validated the data against) for the run's
 * artifacts; undefined when the dataset has no contract file. Validation is ingest's job.
 */
export async function readContractSource(
  dataset: string,
  dir = path.resolve(import.meta.dirname, '../../../contracts'),
): Promise<ContractSource | undefined> {
  if (!/^[a-z][a-z0-9_]*$/.test(dataset)) return undefined;
  const file = path.join(dir, `${dataset}.yaml`);
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  return {
    file: `${dataset}.yaml`,
    text,
    version: /^version:\s*['"]?([\w.-]+)/m.exec(text)?.[1],
    sha256: createHash('sha256').update(text).digest('hex'),
  };
}
