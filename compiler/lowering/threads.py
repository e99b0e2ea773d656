"""A two-thread team for native code: one worker thread that sleeps on a condition variable, and
`symgrad_parallel_run(task, context)`, which runs task(context, 0) on the caller while the
worker runs task(context, 1).

A task shares its work out itself: it takes chunks from an atomic counter in its context until
none are left, so either thread may do any share of it, including all of it. That makes the team
robust on a shared machine: if the worker is slow to wake (the other core is busy), the caller
does more chunks, and when it has done them all and the worker has not yet taken the job, the
job is withdrawn -- the caller never waits for a thread that is not running.

Emitted as LLVM IR over pthreads (libc on current glibc), so the JIT and exported libraries
share it. The worker starts on first use (never on a one-core machine). After a job it polls
for the next one for a bounded ~0.1-0.2 ms (yielding its core to anyone else who wants it), then
sleeps on the condition variable; the caller polls likewise for the worker's last chunk. A
second caller arriving while a job runs does not wait either: it runs the task alone.
"""

from __future__ import annotations

from llvmlite import ir

from compiler.lowering.llvm_types import I8, I32, I64, PTR, VOID

TASK_TYPE = ir.FunctionType(VOID, [PTR, I64])
TASK_POINTER = TASK_TYPE.as_pointer()  # typed, so llvmlite knows the type of calls through it
RUN_SYMBOL = "symgrad_parallel_run"
_SC_NPROCESSORS_ONLN = 84  # glibc's value on Linux
PTHREAD_BYTES = 64  # room for pthread_mutex_t / pthread_cond_t (40 / 48 bytes on glibc)
SPIN_ROUNDS = 512  # how long a thread polls before it sleeps: ~0.1-0.2 ms (see _spin_until)
PAUSES_PER_ROUND = 8  # x86 `pause` is ~40 ns on Zen 5, ~10-140 cycles elsewhere
ROUNDS_PER_YIELD = 16  # sched_yield lets a thread sharing this core run (~0.6 us on this VM)


def _declare(module: ir.Module, name: str, ret: ir.Type, args: list[ir.Type]) -> ir.Function:
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    return ir.Function(module, ir.FunctionType(ret, args), name=name)


def _global(module: ir.Module, name: str, type_: ir.Type, align: int = 8) -> ir.GlobalVariable:
    variable = ir.GlobalVariable(module, type_, name=name)
    variable.initializer = ir.Constant(type_, None)  # zero: PTHREAD_*_INITIALIZER on glibc
    variable.linkage = "internal"
    variable.align = align
    return variable


def emit_thread_team(module: ir.Module) -> ir.Function:
    """Add the team and `symgrad_parallel_run` to `module` (once); return the run function."""
    existing = module.globals.get(RUN_SYMBOL)
    if existing is not None:
        return existing
    lock = _declare(module, "pthread_mutex_lock", I32, [PTR])
    trylock = _declare(module, "pthread_mutex_trylock", I32, [PTR])
    unlock = _declare(module, "pthread_mutex_unlock", I32, [PTR])
    wait = _declare(module, "pthread_cond_wait", I32, [PTR, PTR])
    signal = _declare(module, "pthread_cond_signal", I32, [PTR])
    create = _declare(module, "pthread_create", I32, [PTR, PTR, PTR, PTR])
    sysconf = _declare(module, "sysconf", I64, [I32])
    spin = _emit_spin_until(module)
    blob = ir.ArrayType(I8, PTHREAD_BYTES)
    mutex = _global(module, "symgrad.team.mutex", blob, 64)
    busy = _global(module, "symgrad.team.busy", blob, 64)
    work = _global(module, "symgrad.team.work", blob, 64)
    done = _global(module, "symgrad.team.done", blob, 64)
    state = _global(module, "symgrad.team.state", I32)  # 0 unstarted, 1 running, 2 single core
    generation = _global(module, "symgrad.team.generation", I64)
    pending = _global(module, "symgrad.team.pending", I64)
    taken = _global(module, "symgrad.team.taken", I64)  # the worker took the posted job
    job_task = _global(module, "symgrad.team.task", TASK_POINTER)
    job_context = _global(module, "symgrad.team.context", PTR)
    thread_id = _global(module, "symgrad.team.thread", I64)

    # the worker: wait for a new generation, run task(context, 1), report, repeat
    worker = ir.Function(module, ir.FunctionType(PTR, [PTR]), name="symgrad.team.worker")
    worker.linkage = "internal"
    b = ir.IRBuilder(worker.append_basic_block("entry"))
    seen = b.alloca(I64)
    b.store(ir.Constant(I64, 0), seen)
    poll = worker.append_basic_block("poll")
    loop = worker.append_basic_block("loop")
    check = worker.append_basic_block("check")
    sleep = worker.append_basic_block("sleep")
    run = worker.append_basic_block("run")
    b.branch(poll)
    b.position_at_end(poll)  # a job comes soon after the last one: poll before sleeping
    b.call(spin, [generation, b.load(seen)])
    b.branch(loop)
    b.position_at_end(loop)
    b.call(lock, [mutex])
    b.branch(check)
    b.position_at_end(check)
    current = _observe(b, generation)
    b.cbranch(b.icmp_unsigned("==", current, b.load(seen)), sleep, run)
    b.position_at_end(sleep)
    b.call(wait, [work, mutex])
    b.branch(check)
    b.position_at_end(run)
    b.store(current, seen)
    claim = worker.append_basic_block("claim")
    b.cbranch(b.icmp_signed("==", _observe(b, taken), ir.Constant(I64, 0)), claim, check)
    b.position_at_end(claim)  # the job is still open: take it (else it was withdrawn)
    _publish(b, ir.Constant(I64, 1), taken)
    task, context = b.load(job_task, typ=TASK_POINTER), b.load(job_context, typ=PTR)
    b.call(unlock, [mutex])
    b.call(task, [context, ir.Constant(I64, 1)])
    b.call(lock, [mutex])
    _publish(b, ir.Constant(I64, 0), pending)
    b.call(signal, [done])
    b.call(unlock, [mutex])
    b.branch(poll)

    # the caller's side
    run_fn = ir.Function(module, ir.FunctionType(VOID, [TASK_POINTER, PTR]), name=RUN_SYMBOL)
    task_arg, context_arg = run_fn.args
    b = ir.IRBuilder(run_fn.append_basic_block("entry"))
    serial = run_fn.append_basic_block("serial")
    try_team = run_fn.append_basic_block("try_team")
    start = run_fn.append_basic_block("start")
    started = run_fn.append_basic_block("started")
    parallel = run_fn.append_basic_block("parallel")
    wait_done = run_fn.append_basic_block("wait_done")
    sleep_done = run_fn.append_basic_block("sleep_done")
    finished = run_fn.append_basic_block("finished")
    callee = task_arg
    b.cbranch(b.icmp_signed("==", b.call(trylock, [busy]), ir.Constant(I32, 0)), try_team, serial)

    b.position_at_end(serial)  # another caller holds the team: do all the work here
    b.call(callee, [context_arg, ir.Constant(I64, 0)])
    b.ret_void()

    b.position_at_end(try_team)
    status = b.load(state)
    b.cbranch(b.icmp_signed("==", status, ir.Constant(I32, 0)), start, started)
    b.position_at_end(start)
    cores = b.call(sysconf, [ir.Constant(I32, _SC_NPROCESSORS_ONLN)])
    many = b.icmp_signed(">", cores, ir.Constant(I64, 1))
    with b.if_else(many) as (then, otherwise):
        with then:
            ok = b.call(create, [thread_id, ir.Constant(PTR, None), worker, ir.Constant(PTR, None)])
            b.store(b.select(b.icmp_signed("==", ok, ir.Constant(I32, 0)), ir.Constant(I32, 1),
                             ir.Constant(I32, 2)), state)
        with otherwise:
            b.store(ir.Constant(I32, 2), state)
    b.branch(started)

    b.position_at_end(started)
    running = b.icmp_signed("==", b.load(state), ir.Constant(I32, 1))
    with b.if_then(b.not_(running)):
        b.call(unlock, [busy])
        b.call(callee, [context_arg, ir.Constant(I64, 0)])
        b.ret_void()
    b.branch(parallel)

    b.position_at_end(parallel)
    b.call(lock, [mutex])
    b.store(task_arg, job_task)
    b.store(context_arg, job_context)
    _publish(b, ir.Constant(I64, 1), pending)
    _publish(b, ir.Constant(I64, 0), taken)
    _publish(b, b.add(_observe(b, generation), ir.Constant(I64, 1)), generation)
    b.call(signal, [work])
    b.call(unlock, [mutex])
    b.call(callee, [context_arg, ir.Constant(I64, 0)])
    # the worker took a share and finishes it soon: poll before sleeping on `done` (an
    # untaken job is withdrawn at once below)
    with b.if_then(b.icmp_signed("!=", _observe(b, taken), ir.Constant(I64, 0))):
        b.call(spin, [pending, ir.Constant(I64, 1)])
    b.call(lock, [mutex])
    withdraw = run_fn.append_basic_block("withdraw")
    b.cbranch(b.icmp_signed("==", _observe(b, taken), ir.Constant(I64, 0)), withdraw, wait_done)
    b.position_at_end(withdraw)  # all chunks done and the worker never came: no need to wait
    _publish(b, ir.Constant(I64, 1), taken)
    _publish(b, ir.Constant(I64, 0), pending)
    b.branch(finished)
    b.position_at_end(wait_done)
    b.cbranch(b.icmp_signed("==", _observe(b, pending), ir.Constant(I64, 0)), finished,
              sleep_done)
    b.position_at_end(sleep_done)
    b.call(wait, [done, mutex])
    b.branch(wait_done)
    b.position_at_end(finished)
    b.call(unlock, [mutex])
    b.call(unlock, [busy])
    b.ret_void()
    return run_fn


def _observe(b: ir.IRBuilder, variable: ir.Value) -> ir.Value:
    """An atomic (monotonic) load of a team variable, which the other thread may be writing."""
    return b.load_atomic(variable, "monotonic", 8, typ=I64)


def _publish(b: ir.IRBuilder, value: ir.Value, variable: ir.Value) -> None:
    b.store_atomic(value, variable, "monotonic", 8)


def _emit_spin_until(module: ir.Module) -> ir.Function:
    """`symgrad.team.poll(variable, unchanged)`: wait, for at most SPIN_ROUNDS rounds, until
    the 64-bit `variable` no longer holds `unchanged`.

    A thread sleeping on a condition variable takes tens of microseconds to run again on a
    virtual machine (the idle vCPU halts and must be woken by the hypervisor), as long as a
    small product takes. So a thread that expects a change soon -- the worker after a job (the
    next GEMM of a step comes within microseconds), the caller waiting for the worker's last
    chunk -- polls first, with `pause` between reads, and calls sched_yield every few rounds so
    a thread sharing its core is not held up. The poll is a hint: the caller still decides under
    the mutex, and sleeps on the condition variable when the poll runs out.
    """
    name = "symgrad.team.poll"
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    function = ir.Function(module, ir.FunctionType(VOID, [PTR, I64]), name=name)
    function.linkage = "internal"
    variable, unchanged = function.args
    pause = _pause_instruction(module)
    yield_ = _declare(module, "sched_yield", I32, [])
    entry = function.append_basic_block("entry")
    poll = function.append_basic_block("poll")
    wait = function.append_basic_block("wait")
    done = function.append_basic_block("done")
    b = ir.IRBuilder(entry)
    b.branch(poll)
    b.position_at_end(poll)
    rounds = b.phi(I64)
    rounds.add_incoming(ir.Constant(I64, 0), entry)
    changed = b.icmp_signed("!=", _observe(b, variable), unchanged)
    b.cbranch(b.or_(changed, b.icmp_signed(">=", rounds, ir.Constant(I64, SPIN_ROUNDS))),
              done, wait)
    b.position_at_end(wait)
    if pause is not None:
        for _ in range(PAUSES_PER_ROUND):
            b.call(pause, [])
    later = b.add(rounds, ir.Constant(I64, 1))
    with b.if_then(b.icmp_signed("==", b.and_(later, ir.Constant(I64, ROUNDS_PER_YIELD - 1)),
                                 ir.Constant(I64, 0))):
        b.call(yield_, [])
    rounds.add_incoming(later, b.block)
    b.branch(poll)
    b.position_at_end(done)
    b.ret_void()
    return function


def _pause_instruction(module: ir.Module) -> ir.Function | None:
    """x86's spin-wait hint (`pause`), or None for other targets (the loop reads memory only)."""
    triple = module.triple or _host_triple()
    if not triple.startswith(("x86_64", "i686", "i386")):
        return None
    return _declare(module, "llvm.x86.sse2.pause", VOID, [])


def _host_triple() -> str:
    from llvmlite import binding

    return binding.get_process_triple()
