import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';

/**
 * The one error handler: 4xx keep a message that names the field; 5xx are logged with the request's
 * context and answered with a generic message, so internals never leak. Overload (503 from
 * under-pressure) is expected behaviour, not a fault: it says so, with the Retry-After it set.
 */
export function errorHandler(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
  if (err.code === 'FST_UNDER_PRESSURE') {
    req.log.warn({ url: req.url, method: req.method }, 'shedding load: under pressure');
    void reply.status(503).send({
      error: 'overloaded',
      message: 'the service is under pressure; retry after the Retry-After delay',
    });
    return;
  }
  if (status >= 500) {
    req.log.error({ err, url: req.url, method: req.method }, 'request failed');
    void reply
      .status(status)
      .send({ error: 'internal_error', message: 'the server could not answer; the error is logged' });
    return;
  }
  const message = err.validation ? validationMessage(err) : err.message;
  void reply.status(status).send({ error: errorCode(err, status), message });
}

function errorCode(err: FastifyError, status: number): string {
  if (err.validation) return 'bad_request';
  if (status === 413) return 'body_too_large';
  if (status === 415) return 'unsupported_media_type';
  if (err.code && /^[a-z_]+$/.test(err.code)) return err.code;
  if (status === 429) return 'rate_limited';
  return status === 404 ? 'not_found' : 'bad_request';
}

const TYPE_WORDS: Record<string, string> = {
  number: 'a number',
  integer: 'an integer',
  string: 'a string',
  object: 'an object',
  array: 'an array',
  boolean: 'true or false',
  null: 'null',
};

function validationMessage(err: FastifyError): string {
  const first = err.validation?.[0];
  if (!first) return err.message;
  const context = err.validationContext ?? 'body';
  const at = first.instancePath ? first.instancePath.replace(/^\//, '').replace(/\//g, '.') : '';
  const field = at ? `${context}.${at}` : context;
  const params = first.params as {
    missingProperty?: string;
    additionalProperty?: string;
    allowedValues?: unknown[];
    type?: string | string[];
    limit?: number;
  };
  if (params.missingProperty) return `${field}.${params.missingProperty} is required`;
  if (params.additionalProperty) return `${field}.${params.additionalProperty} is not a known field`;
  if (params.allowedValues) return `${field} must be one of ${params.allowedValues.map(String).join(', ')}`;
  if (params.type !== undefined) {
    const types = (Array.isArray(params.type) ? params.type : String(params.type).split(',')).map(
      (t) => TYPE_WORDS[t] ?? t,
    );
    return `${field} must be ${types.join(' or ')}`;
  }
  if (first.keyword === 'maxLength') return `${field} must be a string of at most ${params.limit} characters`;
  if (first.keyword === 'maxItems') return `${field} must hold at most ${params.limit} items`;
  if (first.keyword === 'minItems') return `${field} must hold at least ${params.limit} items`;
  return `${field} ${first.message ?? 'is invalid'}`;
}
