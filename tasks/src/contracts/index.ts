import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { DriftwoodError } from '../errors.js';
import type { Contract, TableContract } from './types.js';

export * from './settings.js';
export type * from './types.js';

/** contracts/ at the repository root, seen from tasks/src/contracts or tasks/dist/contracts. */
export const DEFAULT_CONTRACTS_DIR = path.resolve(import.meta.dirname, '../../../contracts');

const DEFAULT_FILE_RULES = {
  extra_columns: 'accept',
  missing_column: 'quarantine_file',
  type_change: 'quarantine_file',
  type_change_share: 0.5,
} as const;

let compiled: ValidateFunction | undefined;
async function schemaValidator(dir: string): Promise<ValidateFunction> {
  if (!compiled) {
    // The schema travels with the contracts; a folder of contracts alone falls back to the project's.
    const candidates = [...new Set([dir, DEFAULT_CONTRACTS_DIR])].map((d) =>
      path.join(d, 'contract.schema.json'),
    );
    let text: string | undefined;
    for (const file of candidates) {
      text = await readFile(file, 'utf8').catch(() => undefined);
      if (text !== undefined) break;
    }
    if (text === undefined)
      throw new DriftwoodError('CONFIG_INVALID', `no contract schema: expected ${candidates.join(' or ')}`);
    compiled = new Ajv({ allErrors: false, strict: true, allowUnionTypes: true }).compile(JSON.parse(text));
  }
  return compiled;
}

function describeError(e: ErrorObject): string {
  const where = e.instancePath === '' ? '(root)' : e.instancePath;
  if (e.keyword === 'additionalProperties')
    return `${where}: unknown property '${(e.params as { additionalProperty: string }).additionalProperty}'`;
  if (e.keyword === 'enum')
    return `${where}: ${e.message} (${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')})`;
  return `${where}: ${e.message}`;
}

/**
 * Checks a parsed contract against the JSON Schema and the rules a schema cannot express (the key is
 * a column, names are unique). The error names the file and the JSON path of the first problem.
 */
export async function validateContract(
  raw: unknown,
  source: string,
  dir: string = DEFAULT_CONTRACTS_DIR,
): Promise<Omit<Contract, 'digest'>> {
  const validate = await schemaValidator(dir);
  const bad = (where: string, msg: string): never => {
    throw new DriftwoodError('CONFIG_INVALID', `contract ${source}: ${where}: ${msg}`, {
      contract: source,
      path: where,
    });
  };
  if (!validate(raw)) {
    const first = validate.errors?.[0];
    throw new DriftwoodError(
      'CONFIG_INVALID',
      `contract ${source}: ${first ? describeError(first) : 'invalid'}`,
      { contract: source, path: first?.instancePath ?? '', errors: validate.errors },
    );
  }
  const c = raw as Omit<Contract, 'digest' | 'file_rules' | 'alert_threshold'> & {
    file_rules?: Partial<Contract['file_rules']>;
    alert_threshold?: number;
  };
  const tables = new Set<string>();
  c.tables.forEach((t: TableContract, i) => {
    if (tables.has(t.name)) bad(`/tables/${i}/name`, `duplicate table '${t.name}'`);
    tables.add(t.name);
    const names = new Set<string>();
    t.columns.forEach((col, j) => {
      if (names.has(col.name)) bad(`/tables/${i}/columns/${j}/name`, `duplicate column '${col.name}'`);
      names.add(col.name);
      if (col.role === 'pii' && !col.store_as)
        bad(`/tables/${i}/columns/${j}/store_as`, `a pii column is stored tokenised: name its token column`);
      const pol = col.on_anomaly;
      if (typeof pol === 'object' && pol.default === null && col.nullable === false)
        bad(`/tables/${i}/columns/${j}/on_anomaly/default`, 'null default on a non-nullable column');
    });
    if (!names.has(t.key)) bad(`/tables/${i}/key`, `'${t.key}' is not one of the table's columns`);
    t.indexes?.forEach((cols, j) => {
      const unknown = cols.find((col) => !names.has(col));
      if (unknown !== undefined)
        bad(`/tables/${i}/indexes/${j}`, `'${unknown}' is not one of the table's columns`);
    });
  });
  if (c.forecast) {
    const table = c.tables.find((t) => t.name === c.forecast?.table);
    if (!table) bad('/forecast/table', `'${c.forecast.table}' is not one of the contract's tables`);
    for (const key of ['time_column', 'target'] as const)
      if (!table?.columns.some((col) => col.name === c.forecast?.[key]))
        bad(`/forecast/${key}`, `'${c.forecast[key]}' is not a column of table '${c.forecast.table}'`);
  }
  if (c.source) {
    // The extract step lands the forecast table's rows: the mapping names its columns.
    const table = c.forecast && c.tables.find((t) => t.name === c.forecast?.table);
    if (!table)
      bad('/source', `a price source maps the columns of the forecast table: add a 'forecast' section`);
    for (const [column, from] of Object.entries(c.source.columns ?? {}))
      if (!table?.columns.some((col) => col.name === column))
        bad(
          `/source/columns/${column}`,
          `'${column}' is not a column of table '${table?.name}' (mapped from the source's '${from}')`,
        );
  }
  if (c.training?.split?.strategy === 'time') {
    const where = '/training/split/strategy';
    // Rows carry a time only where the builder reads one: the target table's timestamp column.
    if (c.builder !== 'columns')
      bad(
        where,
        `'time' orders rows by their table's timestamp column, which builder '${c.builder}' does not give its rows (every row is as of one cutoff): use 'hash'`,
      );
    const table = c.tables.find((t) => t.columns.some((col) => col.role === 'target'));
    if (table && !table.columns.some((col) => col.role === 'timestamp'))
      bad(
        where,
        `'time' orders rows by their time: give table '${table.name}' a column with role: timestamp, or use 'hash'`,
      );
  }
  const threshold = c.training?.threshold;
  if (threshold) {
    const where = '/training/threshold';
    const costs = ['false_positive_cost', 'false_negative_cost'] as const;
    if (threshold.objective === 'cost') {
      for (const key of costs)
        if (threshold[key] === undefined)
          bad(`${where}/${key}`, `objective 'cost' needs both costs: add ${key} (e.g. 1)`);
      if (threshold.false_positive_cost === 0 && threshold.false_negative_cost === 0)
        bad(where, 'both costs are 0: every threshold costs nothing; give at least one error a cost');
    } else
      for (const key of costs)
        if (threshold[key] !== undefined)
          bad(
            `${where}/${key}`,
            `a cost counts only with objective: cost (the objective is '${threshold.objective}')`,
          );
  }
  const idColumn = c.training?.id_column;
  if (idColumn !== undefined && !c.tables.some((t) => t.columns.some((col) => col.name === idColumn)))
    bad('/training/id_column', `'${idColumn}' is not a column of any table`);
  return {
    ...c,
    alert_threshold: c.alert_threshold ?? 0.05,
    file_rules: { ...DEFAULT_FILE_RULES, ...c.file_rules },
  };
}

/** Reads and validates contracts/<dataset>.yaml. */
export async function loadContract(dataset: string, dir: string = DEFAULT_CONTRACTS_DIR): Promise<Contract> {
  if (!/^[a-z][a-z0-9_]*$/.test(dataset))
    throw new DriftwoodError('USAGE', `--dataset: expected a lower-case name, got '${dataset}'`);
  const file = path.join(dir, `${dataset}.yaml`);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new DriftwoodError('CONFIG_INVALID', `no contract for dataset '${dataset}': expected ${file}`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new DriftwoodError(
      'CONFIG_INVALID',
      `contract ${file}: not valid YAML (${(err as Error).message})`,
    );
  }
  const contract = await validateContract(raw, file, dir);
  if (contract.dataset !== dataset)
    throw new DriftwoodError(
      'CONFIG_INVALID',
      `contract ${file}: /dataset: expected '${dataset}', got '${contract.dataset}'`,
    );
  return { ...contract, digest: createHash('sha256').update(text).digest('hex') };
}

/** Every contract in a folder (`<dataset>.yaml`), validated; sorted by dataset name. */
export async function loadAllContracts(dir: string = DEFAULT_CONTRACTS_DIR): Promise<Contract[]> {
  const files = (await readdir(dir).catch(() => [] as string[])).filter((f) =>
    /^[a-z][a-z0-9_]*\.yaml$/.test(f),
  );
  return Promise.all(files.sort().map((f) => loadContract(f.slice(0, -'.yaml'.length), dir)));
}

/** The table whose rows a partition file holds, by its file name. */
export function tableForKey(contract: Contract, key: string): TableContract | undefined {
  const file = key.slice(key.lastIndexOf('/') + 1);
  return contract.tables.find((t) => t.files.includes(file));
}
