"""The scoring bench's HTTP client: asks a worker's ``POST /predict/`` at a fixed rate, from a
process of its own (as a card-payment service would), and prints what it measured.

    python -m bench.ask URL BODIES --rate 200 --seconds 10

Reads ``BODIES``, a file of one JSON request body per line (used in turn, round and round).
Sends request ``i`` at ``start + i / rate`` whether or not earlier ones were answered (an open
loop: a worker that stalls is charged for every request that waited, not just one), each on a
keep-alive connection of one aiohttp session, and times it from the moment it is sent to the
moment its whole answer is read. Prints one JSON object: requests sent, statuses, the rate it
kept, p50/p99/max in milliseconds of the answered ones (status 200), and the share answered by
another worker than the one asked (``X-Streamlearn-Worker``). Keeps nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import aiohttp
import orjson

#: requests in flight at most (beyond it, a request waits for a connection: charged to it)
IN_FLIGHT = 64
#: seconds a request may take before it counts as a timeout
TIMEOUT = 30.0


async def ask(url: str, bodies: list[bytes], rate: float, seconds: float) -> dict:
    """Ask ``url`` ``rate`` times a second for ``seconds``; what :func:`summary` says of it."""
    n = max(1, round(rate * seconds))
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    workers: dict[str, int] = {}
    connector = aiohttp.TCPConnector(limit=IN_FLIGHT)
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(body: bytes) -> None:
            sent = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    status = str(response.status)
                    worker = response.headers.get("X-Streamlearn-Worker", "")
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                status, worker = type(exc).__name__, ""
            statuses[status] = statuses.get(status, 0) + 1
            if status == "200":
                latencies.append(time.perf_counter() - sent)
                workers[worker] = workers.get(worker, 0) + 1

        tasks = []
        start = time.perf_counter()
        for i in range(n):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(bodies[i % len(bodies)])))
        sending = time.perf_counter() - start
        await asyncio.gather(*tasks)
    return summary(latencies, statuses, workers, n, sending)


def summary(latencies: list[float], statuses: dict, workers: dict, n: int, sending: float) -> dict:
    """What a run measured, in milliseconds.

    >>> s = summary([0.001 * i for i in range(1, 101)], {"200": 100}, {"a": 100}, 100, 1.0)
    >>> s["p50_ms"], s["p99_ms"], s["max_ms"], s["rate"]
    (50.5, 99.0, 100.0, 100.0)
    """
    ordered = sorted(latencies)

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 3)

    return {
        "requests": n,
        "statuses": statuses,
        "rate": round(n / sending, 1) if sending > 0 else None,
        "p50_ms": ms(statistics.median(ordered)) if ordered else None,
        "p99_ms": ms(ordered[max(0, int(len(ordered) * 0.99) - 1)]) if ordered else None,
        "max_ms": ms(ordered[-1]) if ordered else None,
        "workers": workers,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the worker's /predict/ URL")
    parser.add_argument("bodies", type=Path, help="a file of request bodies, one per line")
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    bodies = [line for line in args.bodies.read_bytes().splitlines() if line.strip()]
    if not bodies:
        sys.exit(f"ask: no request body in {args.bodies}")
    result = asyncio.run(ask(args.url, bodies, args.rate, args.seconds))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
