"""Live-stream latency: from a logger call in a worker process to the event at 50 WebSocket clients.

    python benchmarks/stream_latency.py [--backends sqlite,postgres] [--clients 50]
                                        [--lines 2000] [--rate 200]

Three processes: the API server (`create_api` under uvicorn), a worker running one job that
logs `--lines` lines at `--rate` lines/s, each carrying the wall-clock time of the logger call
(`{"t0": time.time()}`), and this process with the WebSocket clients. The worker also notes
when each flush committed (the flusher publishes right after its commit returns), so two
figures come out per backend, p50/p99 over every (client, line) pair:

    logger -> client   includes waiting for the ~100 ms flush tick (targets: p99 <= 300 ms
                       SQLite, <= 150 ms PostgreSQL)
    commit -> client   the stream path itself (target: p99 <= 25 ms)

PostgreSQL comes from JOBGLASS_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/
test); a scratch database is created and dropped. A backend passes when both p99 targets are
met AND every client received every line of the run, in order, with nothing missing. A backend
that cannot start or cannot be measured (no database, a process that dies, a client that times
out) is a FAILURE, never a skip: choose the backends to measure with --backends. The exit status
is 0 only when every chosen backend passed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

SECRET = "stream-latency-benchmark-secret-0123456789"
JOB = "bench-log"
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


# -- the worker process ---------------------------------------------------------------------


def _make_app(url: str) -> Any:
    from jobglass import JobContext, JobGlass

    app = JobGlass(url, poll_interval=0.02, grace_seconds=1.0)

    @app.job(name=JOB)
    async def bench_log(ctx: JobContext, lines: int = 2000, rate: float = 200.0) -> int:
        log = ctx.log
        log.set_stage("Streaming")
        log.set_total(lines, "lines")
        start = time.monotonic()
        for i in range(lines):
            log.info(f"line {i}", {"i": i, "t0": time.time()})
            log.increment_progress()
            pause = start + (i + 1) / rate - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
        return lines

    return app


async def _work(url: str, commits_path: str) -> int:
    app = _make_app(url)
    commits: list[tuple[int, int, int, float]] = []
    publish = app._publish_feedback

    def noting(batches: Any) -> None:
        now = time.time()  # the flusher calls this right after its commit returned
        for fb in batches:
            if fb.logs:
                commits.append((fb.run_id, fb.logs[0].seq, fb.logs[-1].seq, now))
        publish(batches)

    app._publish_feedback = noting
    async with app:
        worker = app.worker(queues=["default"], concurrency=4)
        worker.install_signal_handlers()
        print("ready", flush=True)
        await worker.run()
    await asyncio.to_thread(Path(commits_path).write_text, json.dumps(commits))
    return 0


# -- the API server process -------------------------------------------------------------------


async def _serve(url: str, port: int) -> int:
    import uvicorn

    from jobglass.web.api import create_api
    from jobglass.web.auth import AuthConfig

    api = create_api(_make_app(url), auth=AuthConfig(jwt_secret=SECRET))
    config = uvicorn.Config(
        api,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        access_log=False,
    )
    await uvicorn.Server(config).serve()
    return 0


# -- the clients (this process) -----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, *args],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


async def _client(url: str, run_ready: asyncio.Event, out: list[tuple[int, int, float]]) -> int:
    """Collect (run id, seq, receive time) of every log line until the run finishes."""
    from websockets.asyncio.client import connect

    async with connect(url, max_size=None, compression=None) as ws:
        for _ in range(2):
            json.loads(await ws.recv())  # hello, snapshot
        run_ready.set()
        while True:
            raw = await asyncio.wait_for(ws.recv(), 120)
            at = time.time()
            message = json.loads(raw)
            if message["type"] == "feedback":
                rid = int(message["runId"])
                out.extend((rid, int(line["seq"]), at) for line in message["logs"])
            elif message["type"] == "status" and message["status"] in ("SUCCESS", "FAILED"):
                return len(out)


def _pct(values: list[float], q: float) -> float:
    """The q-th percentile; NaN for no samples (NaN meets no target)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def _measure(url: str, args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    from jobglass.web.auth import make_dev_token

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    token = make_dev_token(SECRET)
    fd, commits_file = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    server = _spawn("--serve", url, str(port))
    worker: subprocess.Popen[str] | None = None
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            for _ in range(300):
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/api/health")).status_code == 200:
                        break
                await asyncio.sleep(0.05)
            else:
                raise RuntimeError("the API server did not start")
            worker = _spawn("--work", url, commits_file)
            assert worker.stdout is not None
            if (await asyncio.to_thread(worker.stdout.readline)).strip() != "ready":
                raise RuntimeError("the worker did not start")
            ws_url = f"ws://127.0.0.1:{port}/api/admin/stream?token={token}&job={JOB}"
            received: list[list[tuple[int, int, float]]] = [[] for _ in range(args.clients)]
            ready = [asyncio.Event() for _ in range(args.clients)]
            tasks = [
                asyncio.create_task(_client(ws_url, ready[i], received[i]))
                for i in range(args.clients)
            ]
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in ready)), 60)
            r = await http.post(
                "/api/admin/jobs",
                json={"jobName": JOB, "params": {"lines": args.lines, "rate": args.rate}},
                headers={"Authorization": f"Bearer {token}"},
            )
            r.raise_for_status()
            run_id = int(r.json()["run"]["id"])
            await asyncio.wait_for(asyncio.gather(*tasks), 300)
            t0: dict[int, float] = {}
            after = 0
            while True:  # every stored line, page by page (a page holds at most 10,000)
                logs = await http.get(
                    f"/api/admin/jobs/{run_id}/logs",
                    params={"limit": 10_000, "after": after},
                    headers={"Authorization": f"Bearer {token}"},
                )
                logs.raise_for_status()
                rows = logs.json()["logs"]
                t0.update(
                    (int(row["id"]), float(row["context"]["t0"]))
                    for row in rows
                    if row["context"] and "t0" in row["context"]
                )
                if len(rows) < 10_000:
                    break
                after = int(rows[-1]["id"])
    finally:
        if worker is not None:
            _stop(worker)
        _stop(server)
    commits: dict[int, float] = {}
    noted = json.loads(await asyncio.to_thread(Path(commits_file).read_text))
    for rid, first, last, at in noted:
        if rid == run_id:
            for seq in range(first, last + 1):
                commits[seq] = at
    os.unlink(commits_file)
    logger_to_client: list[float] = []
    commit_to_client: list[float] = []
    complete = 0
    for lines in received:
        seqs = [seq for rid, seq, _ in lines if rid == run_id]
        complete += int(seqs == sorted(set(seqs)) and set(t0) <= set(seqs))
        for rid, seq, at in lines:
            if rid == run_id and seq in t0:
                logger_to_client.append((at - t0[seq]) * 1000)
                if seq in commits:
                    commit_to_client.append((at - commits[seq]) * 1000)
    return {
        "clients": args.clients,
        "complete_clients": complete,
        "lines": len(t0),
        "samples": len(logger_to_client),
        "logger_p50": _pct(logger_to_client, 50),
        "logger_p99": _pct(logger_to_client, 99),
        "commit_p50": _pct(commit_to_client, 50),
        "commit_p99": _pct(commit_to_client, 99),
        "commit_mean": statistics.fmean(commit_to_client) if commit_to_client else float("nan"),
    }


def _pg_database(admin_url: str) -> tuple[str, str]:
    import psycopg

    name = f"jg_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_url)
    return name, urlunsplit(parts._replace(path="/" + name))


def _pg_drop(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


TARGETS = {"sqlite": (300.0, 25.0), "postgres": (150.0, 25.0)}


def _verdict(backend: str, result: dict[str, Any], lines: int) -> list[str]:
    """Why this backend's measurement fails; empty when it passed."""
    logger_target, commit_target = TARGETS[backend]
    problems = []
    if result["lines"] != lines:
        problems.append(f"the run stored {result['lines']} of {lines} lines")
    if result["complete_clients"] != result["clients"]:
        missing = result["clients"] - result["complete_clients"]
        problems.append(f"{missing}/{result['clients']} clients missed lines")
    if not result["logger_p99"] <= logger_target:  # NaN (no samples) fails too
        problems.append(f"logger->client p99 over {logger_target:.0f} ms")
    if not result["commit_p99"] <= commit_target:
        problems.append(f"commit->client p99 over {commit_target:.0f} ms")
    return problems


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--work":
        return asyncio.run(_work(sys.argv[2], sys.argv[3]))
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        return asyncio.run(_serve(sys.argv[2], int(sys.argv[3])))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200.0, help="log lines per second")
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not backends or set(backends) - set(TARGETS):
        parser.error(f"--backends: choose from {', '.join(TARGETS)}; got {args.backends!r}")
    if args.clients < 1 or args.lines < 1 or not args.rate > 0:
        parser.error("--clients and --lines must be >= 1 and --rate > 0")
    print(
        f"stream latency: {args.clients} WebSocket clients, worker in another process, "
        f"{args.lines} lines at {args.rate:.0f}/s"
    )
    failed = False
    for backend in backends:
        pg_name = None
        admin = os.environ.get("JOBGLASS_TEST_POSTGRES_URL", PG_DEFAULT)
        tmp = tempfile.TemporaryDirectory()
        try:
            if backend == "sqlite":
                url = f"sqlite:///{tmp.name}/bench.db"
            else:
                pg_name, url = _pg_database(admin)
            # the clients' own garbage collector (100k samples kept) must not add to the figures
            gc.disable()
            try:
                result = asyncio.run(_measure(url, args))
            finally:
                gc.enable()
        except Exception as err:
            # not a skip: a backend asked for and not measured is a failed benchmark
            failed = True
            reason = " ".join(f"{type(err).__name__}: {err}".split())  # one line
            print(f"{backend:9s} FAILED: could not run the benchmark ({reason})", flush=True)
            continue
        finally:
            if pg_name:
                try:
                    _pg_drop(admin, pg_name)
                except Exception as err:
                    print(f"{backend:9s} warning: scratch database {pg_name} not dropped: {err}")
            tmp.cleanup()
        logger_target, commit_target = TARGETS[backend]
        problems = _verdict(backend, result, args.lines)
        failed |= bool(problems)
        verdict = "OK" if not problems else "FAILED: " + "; ".join(problems)
        print(
            f"{backend:9s} logger->client p50 {result['logger_p50']:6.1f} ms"
            f"  p99 {result['logger_p99']:6.1f} ms (target {logger_target:.0f})"
            f" | commit->client p50 {result['commit_p50']:5.1f} ms"
            f"  p99 {result['commit_p99']:5.1f} ms (target {commit_target:.0f})"
            f" | {result['samples']} samples, {result['complete_clients']}/{result['clients']}"
            f" clients got every line | {verdict}",
            flush=True,
        )
    print("stream latency: FAILED" if failed else "stream latency: all backends passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
