package dev.qdrift.data;

import java.util.Objects;

/** A train/test partition of one data set; see {@link Splits#stratified}. */
public record Split(Dataset train, Dataset test) {
    public Split {
        Objects.requireNonNull(train, "train");
        Objects.requireNonNull(test, "test");
    }
}
