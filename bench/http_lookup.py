"""HTTP lookups/s and latency of `streamrec serve` while a stream runs, against a bare ASGI hello-world.

One run, one embedded broker (or --bootstrap): a real worker (`--role all`, kNN) answers a
synthetic stream produced at --rate clicks/s by a separate process, and a real
`streamrec serve` keeps the answers. Three servers on the same stack (uvicorn, one process,
the same options as `streamrec serve`) are then loaded in turn, alternating for --rounds:

- `asgi-hello`: a bare ASGI callable answering a constant JSON body (the baseline; the ratio),
- `fastapi-hello`: a FastAPI route answering the same body (how much the framework costs),
- `streamrec`: GET /sessions/{id}/recommendations for sessions of the stream (RocksDB lookup).

The load is a bounded loop of --requests per round over --connections keep-alive HTTP/1.1
connections to 127.0.0.1 from one asyncio process (a minimal client: httpx would be the
bottleneck). Every figure is printed with the ratio to asgi-hello measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import orjson

from streamrec.config import Settings, load_settings
from streamrec.state.clicklog.synthetic import SyntheticSpec, generate
from streamrec.stream.admin import ensure_topics
from streamrec.stream.clients.producer import ClickProducer
from streamrec.stream.harness.demo import ManagedProcess, settings_env, wait_for_groups, worker_process
from streamrec.stream.harness.replay import Pacing
from streamrec.stream.kafka import scoring_group, stateful_group
from streamrec.stream.topics import ClickEvent

_HELLO = b'{"hello":"world"}'
_SPEC = SyntheticSpec(users=400, sessions=4000, items=1500)


async def asgi_hello(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
    """The baseline: no framework, no routing, a constant body."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,  # type: ignore[operator]
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(_HELLO)).encode())]})
    await send({"type": "http.response.body", "body": _HELLO})  # type: ignore[operator]


def fastapi_hello() -> object:
    from fastapi import FastAPI
    from fastapi.responses import Response

    app = FastAPI()

    @app.get("/sessions/{session_id:path}/recommendations")  # the same route as streamrec serve
    async def hello(session_id: str) -> Response:
        return Response(_HELLO, media_type="application/json")

    return app


def run_hello(kind: str, port: int) -> None:
    """Serve a hello-world with the options `streamrec serve` uses (stream/api/__init__.py)."""
    import uvicorn

    app = asgi_hello if kind == "asgi-hello" else fastapi_hello()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)  # type: ignore[arg-type]


def stream_clicks(settings: Settings, rate_eps: float, stop: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    """Produce the synthetic log (event time = now) at `rate_eps` until `stop`, looping over it."""
    clicks = generate(_SPEC)
    pacing = Pacing(rate_eps=rate_eps)
    with ClickProducer.from_settings(settings) as producer:
        start = time.perf_counter()
        index = 0
        while not stop.is_set():
            click = clicks[index % len(clicks)]
            due = start + pacing.due_s(index, click.ts, 0.0)
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            lap = index // len(clicks)
            producer.send(ClickEvent(event_id=f"b{index}", session_id=f"{click.session_id}-{lap}",
                                     user_id=click.user_id, item_id=click.item_id, ts=time.time()))
            index += 1
            if index % 500 == 0:
                producer.flush(0.0)  # serve delivery callbacks
    print(f"stream: {index:,} clicks in {time.perf_counter() - start:.1f} s "
          f"({index / (time.perf_counter() - start):,.0f}/s)", flush=True)


async def _connection(port: int, paths: list[bytes], latencies: list[float], statuses: dict[int, int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for path in paths:
            started = time.perf_counter()
            writer.write(b"GET " + path + b" HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


async def _load(port: int, paths: list[bytes], connections: int) -> tuple[float, list[float], dict[int, int]]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    shares = [paths[i::connections] for i in range(connections)]
    started = time.perf_counter()
    await asyncio.gather(*(_connection(port, share, latencies, statuses) for share in shares))
    return time.perf_counter() - started, latencies, statuses


def load(port: int, paths: list[bytes], connections: int) -> tuple[float, float, float, dict[int, int]]:
    """(requests/s, p50 ms, p99 ms, responses by status) of one bounded round."""
    elapsed, latencies, statuses = asyncio.run(_load(port, paths, connections))
    ms = np.array(latencies) * 1000.0
    return len(paths) / elapsed, float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), statuses


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_http(port: int, path: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            _, _, _, statuses = load(port, [path.encode()], 1)
            if 200 in statuses:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"127.0.0.1:{port}{path} not answering 200 after {timeout_s:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="Clicks/s of the background stream.")
    parser.add_argument("--requests", type=int, default=20_000, help="Requests per round and server.")
    parser.add_argument("--connections", type=int, default=16, help="Concurrent keep-alive connections.")
    parser.add_argument("--rounds", type=int, default=3, help="Rounds per server (alternating).")
    parser.add_argument("--warm-s", type=float, default=10.0, help="Stream this long before measuring.")
    parser.add_argument("--bootstrap", help="Existing cluster (default: an embedded broker).")
    args = parser.parse_args()

    with ExitStack() as stack:
        bootstrap = args.bootstrap
        if bootstrap is None:
            from streamrec.stream.broker import EmbeddedBroker

            bootstrap = stack.enter_context(EmbeddedBroker()).bootstrap_servers
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="http-lookup-")))
        tag = uuid.uuid4().hex[:8]
        settings = load_settings(kafka={"bootstrap_servers": bootstrap, "topic_prefix": f"h{tag}.",
                                        "consumer_group": f"h{tag}", "session_timeout_ms": 2000},
                                 state={"dir": logs / "state"})
        ensure_topics(settings)
        worker = stack.enter_context(worker_process("worker", "all", settings.state.engine, settings, logs))
        ports = {"streamrec": _free_port(), "asgi-hello": _free_port(), "fastapi-hello": _free_port()}
        env = settings_env(settings)
        serve = [sys.executable, "-m", "streamrec", "serve", "--port", str(ports["streamrec"])]
        stack.enter_context(ManagedProcess("api", serve, env, logs / "api.log"))
        for kind in ("asgi-hello", "fastapi-hello"):
            hello = [sys.executable, __file__, "--serve-hello", kind, str(ports[kind])]
            stack.enter_context(ManagedProcess(kind, hello, env, logs / f"{kind}.log"))
        wait_for_groups(settings, [stateful_group(settings), scoring_group(settings)], [worker])
        _wait_http(ports["streamrec"], "/healthz")
        for kind in ("asgi-hello", "fastapi-hello"):
            _wait_http(ports[kind], "/sessions/x/recommendations")

        stop = multiprocessing.get_context("spawn").Event()
        streamer = multiprocessing.get_context("spawn").Process(target=stream_clicks, args=(settings, args.rate, stop))
        streamer.start()
        try:
            time.sleep(args.warm_s)
            sessions = sorted({c.session_id for c in generate(_SPEC)[: int(args.rate * args.warm_s * 0.8)]})
            rng = np.random.default_rng(1)
            paths = [f"/sessions/{sessions[i]}-0/recommendations".encode()
                     for i in rng.integers(0, len(sessions), args.requests)]
            results: dict[str, list[tuple[float, float, float, dict[int, int]]]] = {k: [] for k in ports}
            for round_ in range(args.rounds):
                for kind in ("asgi-hello", "fastapi-hello", "streamrec"):
                    results[kind].append(load(ports[kind], paths, args.connections))
                    rps, p50, p99, statuses = results[kind][-1]
                    print(f"round {round_ + 1} {kind:>13}: {rps:8,.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  "
                          f"{statuses}", flush=True)
            with urllib.request.urlopen(f"http://127.0.0.1:{ports['streamrec']}/stats", timeout=10) as response:
                live = orjson.loads(response.read())
        finally:
            stop.set()
            streamer.join(60)
        base = statistics.median(r[0] for r in results["asgi-hello"])
        print(f"\nmedian of {args.rounds} rounds, {args.requests:,} requests each over {args.connections} connections, "
              f"stream at {args.rate:,.0f} clicks/s:")
        for kind, rounds in results.items():
            rps = statistics.median(r[0] for r in rounds)
            p99 = statistics.median(r[2] for r in rounds)
            print(f"  {kind:>13}: {rps:8,.0f} req/s (x{rps / base:.2f} of asgi-hello)  p99 {p99:.2f} ms")
        print(f"  the API meanwhile read {live['clicks_per_s']:,.0f} clicks/s and {live['recommendations_per_s']:,.0f} "
              f"recommendations/s (last {live['window_s']:.0f} s), lag {live['health']['lag']}; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        found = sum(r[3].get(200, 0) for r in results["streamrec"])
        print(f"  streamrec lookups answered 200: {found:,} of {args.requests * args.rounds:,} "
              "(the rest 404: not answered yet)")
        if not worker.alive():
            raise SystemExit(f"the worker died during the run; see {worker.log_path}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-hello":
        run_hello(sys.argv[2], int(sys.argv[3]))
    else:
        main()
