package dev.qdrift.model;

import dev.qdrift.backend.Backend;

/**
 * Changes activations in place as the encoder computes them — simulated quantization of a site. The
 * encoder applies a transform before any observer sees the site, so observers of a quantized model
 * see quantized values.
 */
public interface ActivationTransform {
    /** Whether this transform changes the site in the given layer (-1 for {@link Site#EMBEDDINGS}). */
    boolean at(int layer, Site site);

    /** Transforms value ([rows, cols] on the encoder's backend) in place. */
    void apply(int layer, Site site, Backend.FloatBuf value, int rows, int cols);

    ActivationTransform NONE = new ActivationTransform() {
        public boolean at(int layer, Site site) {
            return false;
        }

        public void apply(int layer, Site site, Backend.FloatBuf value, int rows, int cols) {}
    };
}
