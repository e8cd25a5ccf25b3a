package dev.qdrift.model;

import dev.qdrift.backend.Backend;

/** Sees activations as the encoder computes them (calibration, outlier statistics, hidden-state capture). */
public interface ActivationObserver {
    /** Whether this observer looks at the site at all; residual sums are only materialized when asked for. */
    boolean wants(Site site);

    /**
     * @param layer 0-based layer, -1 for {@link Site#EMBEDDINGS}
     * @param value [rows, cols] on the encoder's backend; valid only during the call
     */
    void observe(int layer, Site site, Backend.FloatBuf value, int rows, int cols);
}
