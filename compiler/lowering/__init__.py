"""Lowering: a simplified Graph becomes LLVM IR, then native code.

The driver and what every rule works on:
- codegen: lower_graph, the calling convention, the node loop;
- context: FunctionLowering (the function being emitted: builder, sizes, buffer pointers);
- elements, loops, llvm_types, memory: loading/storing elements, loop nests, LLVM types, the
  arena plan.

Rules, one module per op family as in runtime/ops (rules.py joins their tables): elementwise
(every elementwise op, from its sympy expression through expressions.py and vector_math.py),
shape, indexing, reduction (with cascade_sum), softmax, matmul.

Native kernels the rules call: products (the GEMM entry that picks a kernel per product), gemm
(the packed GEMM), small_products, narrow_products, threads (the thread team); target (LLVM
target machine, JIT and object cache).
"""
