import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import v8 from 'node:v8';
import fc from 'fast-check';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { describe, expect, it } from 'vitest';
import {
  csvRecords,
  type RawRow,
  readCsv,
  readJsonLines,
  readParquet,
} from '../../tasks/src/readers/index.js';

const collect = async (rows: AsyncIterable<RawRow>) => {
  const out: RawRow[] = [];
  for await (const r of rows) out.push(r);
  return out;
};
/** The same text cut into chunks of `size` characters, to cross every chunk boundary. */
const chunked = (text: string, size: number) =>
  Readable.from(
    Array.from({ length: Math.ceil(text.length / size) }, (_, i) => text.slice(i * size, (i + 1) * size)),
  );

describe('CSV reader', () => {
  const text = 'a,b\r\n1,"x, ""quoted"""\n\n2,"multi\nline"\n3\n4,last';
  it.each([1, 2, 3, 7, 1000])('gives the same records and row numbers with %i-char chunks', async (size) => {
    const src = await readCsv(chunked(text, size));
    expect(src.columns).toEqual(['a', 'b']);
    expect(await collect(src.rows)).toEqual([
      { row: 2, values: { a: '1', b: 'x, "quoted"' } },
      { row: 4, values: { a: '2', b: 'multi\nline' } },
      { row: 6, error: 'expected 2 fields, got 1' },
      { row: 7, values: { a: '4', b: 'last' } },
    ]);
  });

  it('names the row where a quote was left open', async () => {
    const src = await readCsv(Readable.from(['a,b\n1,2\n3,"open\n4,5\n']));
    await expect(collect(src.rows)).rejects.toThrow('row 3: unterminated quoted field');
  });

  it('closes the stream when the reader stops early (a file rejected part-way)', async () => {
    const lines = Array.from({ length: 5000 }, (_, i) => `${i},x`).join('\n');
    const stream = Readable.from(['a,b\n', lines.slice(0, 20_000), lines.slice(20_000)]);
    const src = await readCsv(stream);
    for await (const batch of src.textBatches ?? []) {
      expect(batch.records[0]).toEqual(['0', 'x']);
      break;
    }
    expect(stream.destroyed).toBe(true);
  });

  it('rejects an empty file', async () => {
    await expect(readCsv(Readable.from([]))).rejects.toThrow('empty file: no header line');
  });

  it('keeps memory flat while the file grows (streams, never buffers the file)', async () => {
    // ~30 columns per row, generated on the fly: the file never exists as a whole anywhere.
    const header = Array.from({ length: 30 }, (_, i) => `c${i}`).join(',');
    const line = (i: number) =>
      Array.from({ length: 30 }, (_, j) => (j === 0 ? i : (i * 31 + j) % 997)).join(',');
    const total = 1_000_000;
    function* gen() {
      yield `${header}\n`;
      let buf = '';
      for (let i = 0; i < total; i++) {
        buf += `${line(i)}\n`;
        if (buf.length > 64 * 1024) {
          yield buf;
          buf = '';
        }
      }
      yield buf;
    }
    let bytes = 0;
    const stream = Readable.from(
      (function* () {
        for (const c of gen()) {
          bytes += c.length;
          yield c;
        }
      })(),
    );
    const src = await readCsv(stream);
    const samples: number[] = [];
    let n = 0;
    let sum = 0;
    for await (const r of src.rows) {
      n++;
      sum += Number(r.values?.c0 ?? 0);
      // Old space is what survives collections: a reader holding the file would grow it with the file.
      if (n % 100_000 === 0)
        samples.push(
          v8.getHeapSpaceStatistics().find((sp) => sp.space_name === 'old_space')?.space_used_size ?? 0,
        );
    }
    expect(n).toBe(total);
    expect(sum).toBe((total * (total - 1)) / 2);
    const mb = (x: number) => Math.round(x / 1e5) / 10;
    const early = Math.max(...samples.slice(0, 3));
    const late = Math.max(...samples.slice(-3));
    console.log(
      `CSV stream: ${n} rows x 30 cols, ${mb(bytes)} MB read; V8 old-space peak in the first 30%: ${mb(early)} MB, in the last 30%: ${mb(late)} MB`,
    );
    // Growth between the first and the last part of the file stays far below the data read.
    expect(late - early).toBeLessThan(bytes / 4);
  });
});

describe('CSV records across chunks', () => {
  const records = async (chunks: string[]) => {
    const out: [number, string[]][] = [];
    try {
      for await (const r of csvRecords(Readable.from(chunks))) out.push(r);
      return out;
    } catch (err) {
      return { out, error: (err as Error).message };
    }
  };
  it('splits any text the same whatever the chunks (native split of plain lines, state machine otherwise)', async () => {
    const piece = fc.constantFrom('a', 'bc', ',', '"', '""', '\n', '\r', '\r\n', ' ', 'é', '1.5');
    await fc.assert(
      fc.asyncProperty(
        fc.array(piece, { maxLength: 40 }),
        fc.integer({ min: 1, max: 9 }),
        async (parts, size) => {
          const text = parts.join('');
          const whole = await records([text]);
          const pieces = Array.from({ length: Math.ceil(text.length / size) }, (_, i) =>
            text.slice(i * size, (i + 1) * size),
          );
          expect(await records(pieces)).toEqual(whole);
          expect(await records([...text])).toEqual(whole);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('handles a doubled quote split between chunks and a CRLF split between chunks', async () => {
    const out: [number, string[]][] = [];
    for await (const r of csvRecords(Readable.from(['"a"', '"b",c\r', '\nd,e']))) out.push(r);
    expect(out).toEqual([
      [1, ['a"b', 'c']],
      [2, ['d', 'e']],
    ]);
  });
});

describe('JSON Lines reader', () => {
  it('reads objects line by line and reports a broken line by its number', async () => {
    const src = await readJsonLines(Readable.from(['{"a":1,"b":"x"}\n\n{"a":2', ',"b":null}\n[1]\n{"a":']));
    expect(src.columns).toEqual(['a', 'b']);
    expect(src.textual).toBe(false);
    const rows = await collect(src.rows);
    expect(rows.map((r) => [r.row, r.values ?? r.error])).toEqual([
      [1, { a: 1, b: 'x' }],
      [3, { a: 2, b: null }],
      [4, 'expected a JSON object'],
      [5, expect.stringMatching(/^not JSON/)],
    ]);
  });
});

describe('Parquet reader', () => {
  it('reads row group by row group through byte ranges, numbering rows from 1', async () => {
    const n = 200_000;
    const buf = Buffer.from(
      parquetWriteBuffer({
        columnData: [
          { name: 'id', data: Array.from({ length: n }, (_, i) => i), type: 'INT32' },
          { name: 'name', data: Array.from({ length: n }, (_, i) => `n${i}`), type: 'STRING' },
        ],
        rowGroupSize: 50_000,
      }),
    );
    const ranges: [number, number][] = [];
    const src = await readParquet({
      size: buf.length,
      range: async (a, b) => {
        ranges.push([a, b]);
        return buf.subarray(a, b);
      },
    });
    expect(src.columns).toEqual(['id', 'name']);
    const rows = await collect(src.rows);
    expect(rows).toHaveLength(n);
    expect(rows[n - 1]).toEqual({ row: n, values: { id: n - 1, name: `n${n - 1}` } });
    // Read in parts (footer, then row groups), never the whole file at once.
    expect(buf.length).toBeGreaterThan(1024 * 1024);
    expect(ranges.length).toBeGreaterThan(4);
    expect(Math.max(...ranges.map(([a, b]) => b - a))).toBeLessThan(buf.length / 2);
  });

  // Files as other tools write them: DuckDB and polars default to ZSTD, Spark may use GZIP or LZ4.
  it.each(['zstd', 'gzip', 'snappy', 'brotli', 'lz4', 'uncompressed'])(
    'reads a file DuckDB wrote with %s pages',
    async (codec) => {
      const { DuckDBInstance } = await import('@duckdb/node-api');
      const dir = await mkdtemp(path.join(os.tmpdir(), 'driftwood-codec-'));
      const instance = await DuckDBInstance.create(':memory:');
      const duck = await instance.connect();
      try {
        const file = path.join(dir, 'rows.parquet');
        await duck.run(
          `COPY (SELECT i::INTEGER AS id, 'n' || i AS name, i / 4.0 AS amount FROM range(5000) t(i))
           TO '${file}' (FORMAT parquet, COMPRESSION ${codec}, ROW_GROUP_SIZE 2048)`,
        );
        const buf = await readFile(file);
        const src = await readParquet({ size: buf.length, range: async (a, b) => buf.subarray(a, b) });
        expect(src.columns).toEqual(['id', 'name', 'amount']);
        const rows = await collect(src.rows);
        expect(rows).toHaveLength(5000);
        expect(rows[4321]).toEqual({ row: 4322, values: { id: 4321, name: 'n4321', amount: 1080.25 } });
      } finally {
        duck.closeSync();
        instance.closeSync();
        await rm(dir, { recursive: true, force: true });
      }
    },
  );

  it('rejects bytes that are not Parquet', async () => {
    const buf = Buffer.from('a,b\n1,2\n');
    await expect(
      readParquet({ size: buf.length, range: async (a, b) => buf.subarray(a, b) }),
    ).rejects.toThrow(/not a Parquet file/);
  });
});
