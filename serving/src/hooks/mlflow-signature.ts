import { createHmac, timingSafeEqual } from 'node:crypto';

export interface SignedDelivery {
  deliveryId: string | undefined;
  timestamp: string | undefined;
  signature: string | undefined;
  rawBody: string;
}

/**
 * Checks an MLflow webhook delivery: `X-MLflow-Signature: v1,<base64 HMAC-SHA256(secret,
 * "<delivery id>.<timestamp>.<raw body>")>` (mlflow/webhooks/delivery.py), compared in constant
 * time, and a timestamp within `toleranceS` of now so a captured delivery cannot be replayed later.
 * Returns why it is refused, or undefined when it is genuine.
 */
export function mlflowSignatureProblem(
  secret: string,
  d: SignedDelivery,
  nowMs: number,
  toleranceS = 300,
): string | undefined {
  if (!d.deliveryId || !d.timestamp || !d.signature)
    return 'X-MLflow-Delivery-Id, X-MLflow-Timestamp and X-MLflow-Signature are required';
  if (!/^\d{1,12}$/.test(d.timestamp)) return 'X-MLflow-Timestamp must be Unix seconds';
  if (Math.abs(nowMs / 1000 - Number(d.timestamp)) > toleranceS)
    return `X-MLflow-Timestamp is more than ${toleranceS} s from now`;
  if (!d.signature.startsWith('v1,')) return 'X-MLflow-Signature must start with v1,';
  const expected = createHmac('sha256', secret)
    .update(`${d.deliveryId}.${d.timestamp}.${d.rawBody}`)
    .digest();
  const given = Buffer.from(d.signature.slice(3), 'base64');
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    return 'X-MLflow-Signature does not match';
  return undefined;
}
