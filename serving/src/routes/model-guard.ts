import type { FastifyReply } from 'fastify';
import type { ModelHolder, ServedModel } from '../plugins/model-registry.js';

/** The 503 of a route whose model is not loaded, with the reason naming the dataset. */
export function sendNotLoaded(reply: FastifyReply, message: string): FastifyReply {
  return reply.status(503).header('retry-after', '5').send({ error: 'model_not_loaded', message });
}

/**
 * The dataset's served champion, or undefined after answering 503 `model_not_loaded` for it: the
 * one guard every route that needs a model goes through (`if (!champion) return reply;`).
 */
export function championOr503(models: ModelHolder, reply: FastifyReply): ServedModel | undefined {
  const champion = models.champion();
  if (!champion) sendNotLoaded(reply, models.notLoaded());
  return champion;
}
