package dev.qdrift.backend.cuda;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * cuBLASLt opened for use: a handle, the workspace lent to it (its heuristic may pick algorithms that split K;
 * allocated when opened, never during a graph capture) and one {@link CublasLt.Plan} per product key, made on first
 * use. A key cuBLASLt has no algorithm for is remembered and its reason logged once; callers then run another path.
 */
final class CublasLtPlans implements AutoCloseable {
    /** The workspace lent to cuBLASLt. */
    static final long WORKSPACE = 32L << 20;
    /**
     * The operand alignment plans need: the heuristic is asked with cuBLASLt's default alignment preferences (256
     * bytes), and an algorithm it picks may refuse less at run time. The device pool aligns to 256.
     */
    static final long ALIGNMENT = 256;

    /** Makes one plan with the handle and the workspace. */
    @FunctionalInterface
    interface PlanMaker {
        CublasLt.Plan make(CublasLt lt, MemorySegment workspace, long workspaceBytes) throws Throwable;
    }

    private final QdriftCuda cuda;
    private final CublasLt lt;
    private final MemorySegment workspace;
    private final Map<Object, CublasLt.Plan> plans = new HashMap<>();
    private final Set<Object> refused = new HashSet<>();

    private CublasLtPlans(QdriftCuda cuda, CublasLt lt, MemorySegment workspace) {
        this.cuda = cuda;
        this.lt = lt;
        this.workspace = workspace;
    }

    /** cuBLASLt's library, a handle and the workspace; a QdriftException saying why where any of them is missing. */
    static CublasLtPlans open(QdriftCuda cuda) {
        CublasLt lt = null;
        try {
            lt = CublasLt.open();
            return new CublasLtPlans(cuda, lt, cuda.malloc(WORKSPACE));
        } catch (Throwable t) {
            RuntimeException e = new dev.qdrift.QdriftException("cuBLASLt is not available: " + t.getMessage(), t);
            if (lt != null) {
                try {
                    lt.close();
                } catch (RuntimeException suppressed) {
                    e.addSuppressed(suppressed);
                }
            }
            throw e;
        }
    }

    /** The plan for `key`, made by `make` on first use; null where cuBLASLt has no algorithm for it (logged once). */
    CublasLt.Plan plan(Object key, PlanMaker make) {
        CublasLt.Plan plan = plans.get(key);
        if (plan != null || refused.contains(key)) return plan;
        try {
            plan = make.make(lt, workspace, WORKSPACE);
            plans.put(key, plan);
        } catch (CudaException e) {
            refused.add(key);
            Int8Ops.logOnce(key + ": " + e.getMessage() + "; another path runs instead");
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
        return plan;
    }

    /**
     * Releases the plans, the workspace and the handle: each step runs even where an earlier one fails; the first
     * failure is thrown afterwards, the others added to it as suppressed.
     */
    @Override
    public void close() {
        List<Runnable> steps = new ArrayList<>();
        for (CublasLt.Plan plan : plans.values()) steps.add(plan::close);
        steps.add(() -> {
            try {
                cuda.free(workspace);
            } catch (Throwable t) {
                throw new IllegalStateException("freeing the cuBLASLt workspace: " + t, t);
            }
        });
        steps.add(lt::close);
        plans.clear();
        refused.clear();
        RuntimeException first = null;
        for (Runnable step : steps) {
            try {
                step.run();
            } catch (RuntimeException e) {
                if (first == null) first = e;
                else first.addSuppressed(e);
            }
        }
        if (first != null) throw first;
    }
}
