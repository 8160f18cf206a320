import { describe, expect, it } from 'vitest';
import {
  planCsvRewrite,
  planJsonlRewrite,
  planJsonRewrite,
  Subject,
  scrubJson,
} from '../../tasks/src/forget/plan.js';

/** Issue 20, problem 7: erasure plans are pure and never stop on a malformed file. */
const subject = () => {
  const s = new Subject('C7');
  s.add('tok-email');
  return s;
};

describe('planCsvRewrite', () => {
  it.each([
    [
      'a well-formed row of the customer',
      'id,customer_id,x\n1,C7,a\n2,C8,b\n',
      'id,customer_id,x\n2,C8,b\n',
      1,
      0,
    ],
    ['whole values only: C70 is someone else', 'id,customer_id\n1,C70\n', undefined, 0, 0],
    [
      'a short row naming the customer goes, one naming nobody stays',
      'id,customer_id,x\n1,C8,a\n2,C7\n3,short\n',
      'id,customer_id,x\n1,C8,a\n3,short\n',
      1,
      2,
    ],
    [
      'a quote that never closes: read line by line',
      'id,customer_id\n1,C8\n2,"C7\n3,C9\n',
      'id,customer_id\n1,C8\n3,C9\n',
      1,
      1,
    ],
    ['no customer_id column: left alone', 'id,name\n1,C7\n', undefined, 0, 0],
    ['CRLF rows keep their bytes', 'id,customer_id\r\n1,C7\r\n2,C8\r\n', 'id,customer_id\r\n2,C8\r\n', 1, 0],
  ])('%s', (_name, text, expected, removed, malformed) => {
    const plan = planCsvRewrite(text, subject());
    expect(plan.malformed).toBe(malformed);
    if (expected === undefined) expect(plan.changed).toBe(false);
    else expect(plan).toMatchObject({ changed: true, text: expected, removed });
  });
});

describe('planJsonlRewrite', () => {
  it('finds the customer at any depth (rejected rows keep the id inside `values`) and by token', () => {
    const lines = [
      { row: 2, values: { customer_id: 'C7', email: 'tok-other' } },
      { row: 3, values: { customer_id: 'C8', email: 'tok-other' } },
      { row: 4, fields: ['2026-11-01', 'tok-email'] },
      { customer_token: 'C8-token' },
    ].map((l) => JSON.stringify(l));
    const plan = planJsonlRewrite(`${lines.join('\n')}\nnot json C7\nnot json C70\n`, subject());
    expect(plan).toMatchObject({ changed: true, removed: 3, malformed: 2 });
    if (plan.changed) expect(plan.text).toBe(`${lines[1]}\n${lines[3]}\nnot json C70\n`);
  });
});

describe('scrubJson and planJsonRewrite', () => {
  it('drops the array elements naming the customer and nulls a value held directly', () => {
    const { value, removed } = scrubJson(
      {
        rows: [
          { customer_id: 'C7', label: 1 },
          { customer_id: 'C8', label: 0 },
        ],
        owner: 'C7',
        n: 2,
      },
      subject(),
    );
    expect(value).toEqual({ rows: [{ customer_id: 'C8', label: 0 }], owner: null, n: 2 });
    expect(removed).toBe(2);
  });

  it('keeps a pretty-printed file pretty, and leaves a file without the customer unchanged', () => {
    const text = `${JSON.stringify({ problems: [{ value: 'C7' }, { value: 'x' }] }, null, 2)}\n`;
    const plan = planJsonRewrite(text, subject());
    expect(plan.changed && plan.text).toBe(`${JSON.stringify({ problems: [{ value: 'x' }] }, null, 2)}\n`);
    expect(planJsonRewrite('{"a":"C70"}', subject()).changed).toBe(false);
  });
});
