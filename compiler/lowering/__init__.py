"""Native building blocks of lowering: LLVM target and JIT, the packed GEMM, vector exp/log."""
