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

    /**
     * The site's static grid when {@link #apply} is {@link Backend#fakeQuantColumns} on it — so that a kernel that
     * produces the site can quantize it in the same pass — else null (not transformed here, or a range taken at run
     * time).
     */
    default Backend.ColumnGrid columnGrid(int layer, Site site) {
        return null;
    }

    ActivationTransform NONE = new ActivationTransform() {
        public boolean at(int layer, Site site) {
            return false;
        }

        public void apply(int layer, Site site, Backend.FloatBuf value, int rows, int cols) {}
    };
}
