import { describe, expect, it } from 'vitest';
import { promoteResponse } from '../../serving/src/promote/promote-step.js';

const result = {
  alias: 'champion',
  version: '7',
  previous: '6',
  promoted: true,
  reason: 'beats the champion',
};

/** `POST /v1/admin/promote` answers by the promote step's exit code, the contract with Airflow too. */
describe('promoteResponse: the promote step’s exit code as the route’s answer', () => {
  it.each([
    ['0 with a result: promoted', 0, result, '', 200, result],
    [
      '99: the gate did not pass, with its result and reason',
      99,
      { ...result, promoted: false, reason: 'candidate AUC 0.61 is below 0.65' },
      '',
      409,
      {
        error: 'gate_not_passed',
        message: 'candidate AUC 0.61 is below 0.65',
        result: { ...result, promoted: false, reason: 'candidate AUC 0.61 is below 0.65' },
      },
    ],
    [
      '2: usage or configuration, naming the problem from the step’s log',
      2,
      undefined,
      '{"level":50,"msg":"setting DRIFTWOOD_DATASET: expected a lower-case dataset name"}\n',
      400,
      { error: 'bad_request', message: 'setting DRIFTWOOD_DATASET: expected a lower-case dataset name' },
    ],
    [
      '1: a fault, 502 with the step’s last words',
      1,
      undefined,
      'starting\n{"msg":"promote failed","err":{"message":"cannot reach http://mlflow:5000"}}\n',
      502,
      { error: 'promotion_failed', message: 'the promote step exited 1: cannot reach http://mlflow:5000' },
    ],
    [
      '2 with CHAMPION_CHANGED: 409, the champion moved since evaluation (issue 20, problem 5)',
      2,
      undefined,
      'driftwood promote: CHAMPION_CHANGED: champion changed from 4 to 5 since evaluation; re-evaluate\n',
      409,
      { error: 'champion_changed', message: 'champion changed from 4 to 5 since evaluation; re-evaluate' },
    ],
    [
      '2 with VERSION_NOT_FOUND: 404 naming the version (issue 20, problem 5)',
      2,
      undefined,
      'driftwood promote: VERSION_NOT_FOUND: model churn has no version 999999\n',
      404,
      { error: 'version_not_found', message: 'model churn has no version 999999' },
    ],
    [
      '2 with DATA_MISSING: 409 not_ready, the version lacks its evidence (evaluate or retrain first)',
      2,
      undefined,
      'driftwood promote: DATA_MISSING: version 3 has no evidence for champion: run evaluate first\n',
      409,
      { error: 'not_ready', message: 'version 3 has no evidence for champion: run evaluate first' },
    ],
    [
      'killed: 502',
      null,
      undefined,
      '',
      502,
      { error: 'promotion_failed', message: 'the promote step exited on a signal' },
    ],
    [
      '0 without a result file: 502, not a made-up success',
      0,
      undefined,
      '',
      502,
      { error: 'promotion_failed', message: 'the promote step exited 0' },
    ],
  ] as const)('%s', (_what, code, res, stderr, status, body) => {
    expect(promoteResponse({ code, result: res, stderr })).toEqual({ status, body });
  });
});
