"""Instructions an attempt costs, per observability stack: a figure that does not drift.

Run from the repository root (needs valgrind: `apt-get install valgrind`; about a minute):

    .venv/bin/python benchmarks/attempt_instructions.py
    .venv/bin/python benchmarks/attempt_instructions.py --in-situ   # jobglass worker, PostgreSQL

On a shared VM, runs/s and CPU time per run drift by 30% or more between back-to-back
measurements of the same code, more than the stacks differ. The number of instructions
executed does not: valgrind's cachegrind counts them (`--cache-sim=no`) for the same work at
two sizes, and the difference divided by the extra attempts is the cost of one attempt,
without the interpreter's start-up. Counts repeat within about 1% (the hash seed is fixed).

Default: in one process, `app.execute` of no-op runs on SQLite, 100 at a time, as a worker
runs them, with the worker's collector settings (`tune_gc`), per configuration of the app:

  - `bare`: no attempt middleware, no attempt listeners;
  - `context`: `run_context_middleware` only; `logging`: `logging_middleware` only, text lines
    at INFO to a null stream through `configure_logging(batched=True)`; `metrics`: the
    metrics listener only;
  - `observability`: all three (what issue 7's 10% budget is about);
  - `defaults`: every default of `JobGlass()` (also the application log's job lines).

`--in-situ`: the same comparison for `bare` and `observability` with a real `jobglass worker`
process under valgrind on a fresh PostgreSQL database (the claim, the finish and the
database client included; `benchmarks/queue_throughput.py`'s workload), at 500 and 2,500
runs. Slower (a few minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
STACKS = ("bare", "context", "logging", "metrics", "observability", "defaults")
BATCH = 100


class _NullStream(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)


async def _attempts(stack: str, batches: int) -> None:
    """The measured process: `batches` x 100 no-op attempts (plus one warm-up batch)."""
    from jobglass import JobContext, JobGlass
    from jobglass.observe.context import run_context_middleware
    from jobglass.observe.logging import configure_logging, logging_middleware
    from jobglass.process_gc import tune_gc

    configure_logging(stream=_NullStream(), batched=True)
    folder = tempfile.mkdtemp(prefix="jg-instr-")
    app = JobGlass(f"sqlite:///{folder}/instr.db")

    @app.job(name="noop")
    async def noop(ctx: JobContext) -> None:
        return None

    async with app:
        queued = await app.enqueue("noop", correlation_id="abc123def456")
        run = await app.store.get_run(queued.id)
        assert run is not None
        middleware: list[Any] = {
            "context": [run_context_middleware],
            "logging": [logging_middleware],
            "observability": [run_context_middleware, logging_middleware],
            "defaults": list(app.middleware),
        }.get(stack, [])
        listeners = list(app.attempt_listeners)
        app.middleware = middleware
        app.attempt_listeners = (
            listeners if stack in ("metrics", "observability", "defaults") else []
        )
        for listener in app.attempt_listeners:
            getattr(listener, "prepare", lambda: None)()
        tune_gc()

        async def finish(fin: Any, logger: Any) -> bool:
            app.flusher.forget(logger)
            return True

        for _ in range(batches + 1):
            await asyncio.gather(*(app.execute(run, finish=finish) for _ in range(BATCH)))
    shutil.rmtree(folder, ignore_errors=True)


def _count(argv: list[str], env: dict[str, str] | None = None) -> int:
    """Instructions valgrind counted for a command (all its processes' threads)."""
    with tempfile.TemporaryDirectory(prefix="jg-cg-") as folder:
        out = Path(folder) / "cg.%p"
        subprocess.run(
            [
                "valgrind",
                "--tool=cachegrind",
                "--cache-sim=no",
                f"--cachegrind-out-file={out}",
                *argv,
            ],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return _take_counts(Path(folder))


def _take_counts(folder: Path) -> int:
    """The instructions counted in the cachegrind files in `folder`, which are removed."""
    total = 0
    for path in folder.glob("cg.*"):
        total += _summary(path)
        path.unlink()
    return total


def _summary(path: Path) -> int:
    for line in path.read_text().splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    return 0


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    return env


def in_process(stacks: list[str], small: int, large: int) -> dict[str, float]:
    """Instructions per attempt for each stack (differences of two sizes). The counts do
    not depend on what else runs: one valgrind per core at a time."""
    env = _environment()

    def count(stack: str, batches: int) -> int:
        return _count([sys.executable, __file__, "--child", stack, str(batches)], env)

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        sizes = {
            stack: (pool.submit(count, stack, small), pool.submit(count, stack, large))
            for stack in stacks
        }
        per_attempt: dict[str, float] = {}
        for stack, (few, many) in sizes.items():
            per_attempt[stack] = (many.result() - few.result()) / ((large - small) * BATCH)
            _print(stack, per_attempt)
    return per_attempt


def in_situ(runs: tuple[int, int]) -> dict[str, float]:
    """Instructions per run of a valgrind-wrapped `jobglass worker` on PostgreSQL."""
    sys.path.insert(0, str(REPO))
    import benchmarks.queue_throughput as queue

    wrapper = Path(tempfile.mkdtemp(prefix="jg-vg-"))
    counts = wrapper / "counts"
    counts.mkdir()
    script = wrapper / "python"
    script.write_text(
        "#!/bin/sh\nexec valgrind --tool=cachegrind --cache-sim=no "
        f'--cachegrind-out-file={counts}/cg.%p "{sys.executable}" "$@"\n'
    )
    script.chmod(0o755)
    queue.wait_ready.__defaults__ = (300,)  # a worker under valgrind starts slowly
    real = sys.executable
    os.environ["PYTHONHASHSEED"] = "0"
    per_run: dict[str, float] = {}
    try:
        sys.executable = str(script)
        for stack in ("bare", "observability"):
            totals = []
            for count in runs:
                dbs = queue.Databases(queue.PG_DEFAULT)
                try:
                    asyncio.run(queue.measure_end_to_end(dbs.fresh("postgres"), count, 1, stack))
                finally:
                    dbs.drop_all()
                totals.append(_take_counts(counts))
            per_run[stack] = (totals[1] - totals[0]) / (runs[1] - runs[0])
            _print(stack, per_run, "run, in situ")
    finally:
        sys.executable = real
        shutil.rmtree(wrapper, ignore_errors=True)
    return per_run


def _print(stack: str, figures: dict[str, float], unit: str = "attempt") -> None:
    value = figures[stack]
    note = ""
    if stack != "bare" and "bare" in figures:
        extra = value - figures["bare"]
        note = f"  (+{extra:,.0f} over bare: +{extra / figures['bare']:.1%})"
    print(f"  {stack:14s} {value:>10,.0f} instructions per {unit}{note}", flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stacks", default=",".join(STACKS))
    parser.add_argument("--in-situ", action="store_true", help="a real worker on PostgreSQL")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        asyncio.run(_attempts(args.child[0], int(args.child[1])))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: apt-get install valgrind", file=sys.stderr)
        return 1
    if args.in_situ:
        print("instructions per no-op run, one jobglass worker on PostgreSQL:")
        in_situ((500, 2_500))
        return 0
    stacks = [s.strip() for s in args.stacks.split(",") if s.strip()]
    unknown = sorted(set(stacks) - set(STACKS))
    if unknown:
        parser.error(f"unknown stack(s) {', '.join(unknown)}; known: {', '.join(STACKS)}")
    if "bare" in stacks:
        stacks.remove("bare")
    print(f"instructions per no-op attempt, {BATCH} at a time, in one process:")
    in_process(["bare", *stacks], 1, 21)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
