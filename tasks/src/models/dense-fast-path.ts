import type { tf } from './tf.js';

type Activation = (x: number) => number;
const ACTIVATIONS: Record<string, Activation> = {
  linear: (x) => x,
  relu: (x) => Math.max(x, 0),
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  tanh: Math.tanh,
};

interface DenseLayer {
  inputs: number;
  units: number;
  kernel: Float32Array; // row-major [inputs, units]
  bias: Float32Array;
  activation: Activation;
}

/**
 * A forward pass for chains of Dense layers on typed arrays. For one row this is far cheaper than
 * TF.js op dispatch; it is built from the model's own weights and checked against TF.js in tests.
 * Returns undefined for models it cannot run (then callers use TF.js). The array it returns is reused
 * by its next call.
 */
export function compileDenseChain(model: tf.LayersModel): ((x: Float32Array) => Float32Array) | undefined {
  const layers: DenseLayer[] = [];
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    if (cls === 'InputLayer' || cls === 'Dropout') continue;
    if (cls !== 'Dense') return undefined;
    const config = layer.getConfig() as { activation?: string; useBias?: boolean };
    const activation = ACTIVATIONS[config.activation ?? 'linear'];
    if (!activation) return undefined;
    const weights = layer.getWeights();
    const kernelTensor = weights[0];
    if (!kernelTensor) return undefined;
    const [inputs, units] = kernelTensor.shape as [number, number];
    const kernel = kernelTensor.dataSync() as Float32Array;
    const bias = weights[1] ? (weights[1].dataSync() as Float32Array) : new Float32Array(units);
    layers.push({
      inputs,
      units,
      kernel: Float32Array.from(kernel),
      bias: Float32Array.from(bias),
      activation,
    });
  }
  if (layers.length === 0) return undefined;
  // Each layer writes into its own buffer, allocated once: the returned array is overwritten by the
  // next call, so callers read it before scoring again (one row at a time, as serving does).
  const outputs = layers.map((l) => new Float32Array(l.units));
  return (x) => {
    let cur = x;
    for (let k = 0; k < layers.length; k++) {
      const l = layers[k] as DenseLayer;
      const out = outputs[k] as Float32Array;
      for (let j = 0; j < l.units; j++) {
        let s = l.bias[j] as number;
        for (let i = 0; i < l.inputs; i++) s += (cur[i] as number) * (l.kernel[i * l.units + j] as number);
        out[j] = l.activation(s);
      }
      cur = out;
    }
    return cur;
  };
}
