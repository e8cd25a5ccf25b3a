package dev.qdrift.attribution;

/**
 * The scalar an attribution explains: a class logit, or the log-probability of a class (log-softmax over
 * the head's logits). The class is given, or {@link #PREDICTED}: resolved to the argmax of the logits on
 * the actual input (never per interpolation step — see {@link #resolve}).
 */
public record Target(Kind kind, int classIndex) {
    public enum Kind { LOGIT, LOG_PROB }

    public static final int PREDICTED = -1;

    public Target {
        if (classIndex < PREDICTED) throw new IllegalArgumentException("class index must be >= 0 (or PREDICTED), got " + classIndex);
    }

    public static Target logit(int c) {
        return new Target(Kind.LOGIT, c);
    }

    public static Target logProb(int c) {
        return new Target(Kind.LOG_PROB, c);
    }

    public static Target predictedLogit() {
        return new Target(Kind.LOGIT, PREDICTED);
    }

    public static Target predictedLogProb() {
        return new Target(Kind.LOG_PROB, PREDICTED);
    }

    public boolean isPredicted() {
        return classIndex == PREDICTED;
    }

    /** This target with a predicted class fixed to argmax(logits) (lowest index on ties); a given class stays. */
    public Target resolve(double[] logits) {
        if (!isPredicted()) return this;
        int best = 0;
        for (int i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
        return new Target(kind, best);
    }

    public double value(double[] logits) {
        int c = checkedClass(logits);
        return kind == Kind.LOGIT ? logits[c] : logits[c] - logSumExp(logits);
    }

    /** d value / d logits: e_c for a logit, e_c - softmax(logits) for a log-probability. */
    public double[] gradient(double[] logits) {
        int c = checkedClass(logits);
        double[] g = new double[logits.length];
        if (kind == Kind.LOG_PROB) {
            double lse = logSumExp(logits);
            for (int i = 0; i < g.length; i++) g[i] = -Math.exp(logits[i] - lse);
        }
        g[c] += 1;
        return g;
    }

    private int checkedClass(double[] logits) {
        if (isPredicted()) throw new IllegalStateException("resolve a predicted target against the input's logits first");
        if (classIndex >= logits.length)
            throw new IllegalArgumentException("class " + classIndex + " out of range: the head has " + logits.length + " classes");
        return classIndex;
    }

    static double logSumExp(double[] z) {
        double max = Double.NEGATIVE_INFINITY, sum = 0;
        for (double v : z) max = Math.max(max, v);
        for (double v : z) sum += Math.exp(v - max);
        return max + Math.log(sum);
    }

    @Override
    public String toString() {
        return (kind == Kind.LOGIT ? "logit" : "log-prob") + "[" + (isPredicted() ? "predicted" : Integer.toString(classIndex)) + "]";
    }
}
