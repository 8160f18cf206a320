import { DEFAULT_ID_COLUMN } from './predictions/row-text.js';

/**
 * JSON schemas of the API. The request schemas are built from the served model's fitted transform
 * (its numeric and categorical input fields), so they validate requests and document them in the
 * OpenAPI document from the one source; the response schemas also strip any field not listed.
 */
export interface InputFields {
  numeric: string[];
  categorical: string[];
}

const MAX_TEXT = 64;

export function featureRowSchema(fields: InputFields | undefined, idColumn = DEFAULT_ID_COLUMN) {
  // Without a model at start there is no contract yet: accept an object and check each request
  // against the model that is loaded when it arrives (serving/src/validate.ts).
  if (!fields) return { type: 'object', description: 'one row’s features (no model loaded yet)' };
  const properties: Record<string, unknown> = {
    [idColumn]: {
      type: 'string',
      maxLength: MAX_TEXT,
      description: 'routes the canary split; tokenised before it is logged',
    },
  };
  for (const name of fields.numeric)
    properties[name] = { type: ['number', 'null'], description: 'numeric; null or absent is imputed' };
  for (const name of fields.categorical)
    properties[name] = {
      type: 'string',
      maxLength: MAX_TEXT,
      description: 'categorical; unseen values are bucketed',
    };
  return {
    type: 'object',
    properties,
    required: [...fields.categorical],
    additionalProperties: false,
  };
}

/** `POST …/predict/by-id`: the id alone; its features come from the warehouse. */
export function idRequestSchema(idColumn = DEFAULT_ID_COLUMN) {
  return {
    type: 'object',
    properties: {
      [idColumn]: {
        type: 'string',
        minLength: 1,
        maxLength: MAX_TEXT,
        description: 'the id whose features are computed as of now; tokenised before it is logged',
      },
    },
    required: [idColumn],
    additionalProperties: false,
  };
}

export const errorSchema = {
  type: 'object',
  properties: { error: { type: 'string' }, message: { type: 'string' } },
  required: ['error', 'message'],
} as const;

export const modelRefSchema = {
  type: 'object',
  properties: { name: { type: 'string' }, version: { type: 'string' }, alias: { type: 'string' } },
  required: ['name', 'version', 'alias'],
} as const;

export const predictionSchema = {
  type: 'object',
  properties: {
    probability: { type: 'number' },
    label: { type: 'integer' },
    model: modelRefSchema,
  },
  required: ['probability', 'label', 'model'],
} as const;

export const byIdPredictionSchema = {
  type: 'object',
  properties: {
    ...predictionSchema.properties,
    as_of: { type: 'string', description: 'when the features were computed (ISO 8601)' },
  },
  required: [...predictionSchema.required, 'as_of'],
} as const;

export function errorResponses<C extends number>(...codes: C[]): Record<C, typeof errorSchema> {
  return Object.fromEntries(codes.map((c) => [c, errorSchema])) as Record<C, typeof errorSchema>;
}

export const modelInfoSchema = {
  type: 'object',
  properties: {
    dataset: { type: 'string' },
    name: { type: 'string' },
    version: { type: 'string' },
    alias: { type: 'string' },
    run_id: { type: ['string', 'null'] },
    model_id: { type: ['string', 'null'] },
    data_digest: { type: ['string', 'null'] },
    cutoff: { type: ['string', 'null'] },
    loaded_at: { type: 'string' },
    metrics: { type: 'object', additionalProperties: { type: 'number' } },
    inputs: {
      type: 'object',
      properties: {
        numeric: { type: 'array', items: { type: 'string' } },
        categorical: { type: 'array', items: { type: 'string' } },
      },
    },
  },
  required: ['name', 'version', 'alias', 'metrics'],
} as const;
