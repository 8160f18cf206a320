import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';

/**
 * The one error handler: 4xx keep a message that names the field; 5xx are logged with the request's
 * context and answered with a generic message, so internals never leak.
 */
export function errorHandler(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
  if (status >= 500) {
    req.log.error({ err, url: req.url, method: req.method }, 'request failed');
    void reply
      .status(status)
      .send({ error: 'internal_error', message: 'the server could not answer; the error is logged' });
    return;
  }
  const message = err.validation ? validationMessage(err) : err.message;
  void reply.status(status).send({ error: err.code ?? 'bad_request', message });
}

function validationMessage(err: FastifyError): string {
  const first = err.validation?.[0];
  if (!first) return err.message;
  const at = first.instancePath ? first.instancePath.replace(/^\//, '').replace(/\//g, '.') : '';
  const params = first.params as {
    missingProperty?: string;
    additionalProperty?: string;
    allowedValues?: unknown[];
  };
  if (params.missingProperty) return `body.${params.missingProperty} is required`;
  if (params.additionalProperty)
    return `body${at ? `.${at}` : ''}.${params.additionalProperty} is not a known field`;
  const field = at ? `body.${at}` : 'body';
  if (params.allowedValues) return `${field} must be one of ${params.allowedValues.map(String).join(', ')}`;
  return `${field} ${first.message ?? 'is invalid'}`;
}
