#!/usr/bin/env bash
# On the GPU host: runs a command with the CUPTI tracer injected; the trace goes to $QD_TRACE_FILE.
# Usage: QD_TRACE_FILE=$OUT/trace.csv bench/gpu/trace/run.sh command args...
set -uo pipefail
T=$(cd "$(dirname "$0")/../../.." && pwd)/.gpu/trace
export CUDA_INJECTION64_PATH=$T/libqd_trace.so LD_LIBRARY_PATH=$T:${LD_LIBRARY_PATH:-}
exec "$@"
