import type { Readable } from 'node:stream';
import { type RawRow, ReaderError, type RowSource } from './types.js';

/**
 * Splits a stream of CSV text (RFC 4180: quotes, doubled quotes, CRLF) into records, chunk by chunk,
 * so memory holds one chunk and one record whatever the file size. Yields [line the record starts
 * on, fields]. A quote left open at the end of the file is an error naming the line it opened on.
 */
export async function* csvRecords(input: AsyncIterable<string | Buffer>): AsyncGenerator<[number, string[]]> {
  let field = '';
  let record: string[] = [];
  let inQuotes = false;
  let quoteClosed = false;
  let line = 1;
  let recordLine = 1;
  let pendingCr = false;
  for await (const chunk of input) {
    const text = typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    let start = 0;
    const n = text.length;
    let i = 0;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (pendingCr) {
        pendingCr = false;
        if (c === 10) {
          i++;
          start = i;
          continue;
        }
      }
      if (inQuotes) {
        if (c === 34) {
          field += text.slice(start, i);
          if (i + 1 < n) {
            if (text.charCodeAt(i + 1) === 34) {
              field += '"';
              i += 2;
              start = i;
              continue;
            }
            inQuotes = false;
            i++;
            start = i;
            continue;
          }
          // The quote is the last char of the chunk: decide with the next chunk.
          inQuotes = false;
          quoteClosed = true;
          i++;
          start = i;
          continue;
        }
        if (c === 10) line++;
        i++;
        continue;
      }
      if (quoteClosed) {
        quoteClosed = false;
        if (c === 34 && i === 0) {
          // A doubled quote split across chunks.
          field += '"';
          inQuotes = true;
          i++;
          start = i;
          continue;
        }
      }
      if (c === 34) {
        field += text.slice(start, i);
        inQuotes = true;
        i++;
        start = i;
      } else if (c === 44) {
        record.push(field + text.slice(start, i));
        field = '';
        i++;
        start = i;
      } else if (c === 10 || c === 13) {
        record.push(field + text.slice(start, i));
        field = '';
        yield [recordLine, record];
        record = [];
        line++;
        recordLine = line;
        if (c === 13) {
          if (i + 1 < n) {
            if (text.charCodeAt(i + 1) === 10) i++;
          } else pendingCr = true;
        }
        i++;
        start = i;
      } else i++;
    }
    field += text.slice(start, n);
  }
  if (inQuotes) throw new ReaderError('unterminated quoted field', recordLine);
  if (field !== '' || record.length > 0) {
    record.push(field);
    yield [recordLine, record];
  }
}

/** Opens a CSV stream: the first record is the header; blank lines are skipped. */
export async function readCsv(stream: Readable): Promise<RowSource> {
  stream.setEncoding('utf8');
  const records = csvRecords(stream);
  const first = await records.next();
  if (first.done) throw new ReaderError('empty file: no header line', null);
  const header = first.value[1].map((h) => h.trim());
  if (header.length === 0 || header.every((h) => h === '')) throw new ReaderError('empty header line', 1);
  async function* rows(): AsyncGenerator<RawRow> {
    for await (const [row, fields] of records) {
      if (fields.length === 1 && fields[0] === '') continue;
      if (fields.length !== header.length) {
        yield { row, error: `expected ${header.length} fields, got ${fields.length}` };
        continue;
      }
      const values: Record<string, unknown> = {};
      for (let j = 0; j < header.length; j++) values[header[j] as string] = fields[j];
      yield { row, values };
    }
  }
  return { columns: header, textual: true, rows: rows() };
}
