"""Redis client cost of one charge: redis-py's pure-Python parser against hiredis, same process, interleaved.

A profile showed a charge spending most of its time in redis-py packing the EVALSHA command
and parsing the reply. This measures ``RedisBalances.charge`` (one prepaid debit per call,
the production script, fence and outbox included) against a redis-server started for the run,
alternating the two parsers round by round so machine load hits both alike.

    .venv/bin/python bench/redis_client_bench.py [--calls 5000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import redis
from redis.connection import _RESP2Parser

sys.path.insert(0, str(Path(__file__).resolve().parent))
from realtime_bench import RedisServer  # noqa: E402
from warp_billing.adapters.redis_balances import RedisBalances  # noqa: E402
from warp_billing.charging.accounts import ChargeRequest, PrepaidTerms  # noqa: E402


def parsers() -> dict[str, type]:
    chosen = {"redis-py (pure Python)": _RESP2Parser}
    try:
        import hiredis  # noqa: F401
        from redis.connection import _HiredisParser

        chosen[f"hiredis {hiredis.__version__}"] = _HiredisParser
    except ImportError:
        print("hiredis is not installed: only the pure-Python parser is measured")
    return chosen


def round_us(store: RedisBalances, prefix: str, calls: int) -> float:
    terms = PrepaidTerms()
    started = time.perf_counter_ns()
    for number in range(calls):
        store.charge(ChargeRequest("BENCH", f"{prefix}-{number}", 1, 1_793_750_400_000, "voice", "v1", terms))
    return (time.perf_counter_ns() - started) / calls / 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    server = RedisServer()
    try:
        stores = {}
        for name, parser_class in parsers().items():
            pool = redis.ConnectionPool(port=server.port, decode_responses=True, parser_class=parser_class)
            stores[name] = RedisBalances(redis.Redis(connection_pool=pool), dedup_ttl_s=3600)
        first = next(iter(stores.values()))
        first.credit("BENCH", "topup:funds", 10**12, "topup", "", 0, PrepaidTerms())
        results: dict[str, list[float]] = {name: [] for name in stores}
        for number in range(args.rounds):
            for name, store in stores.items():
                results[name].append(round_us(store, f"{name[:4]}{number}", args.calls))
        for name, values in results.items():
            print(f"  {name}: {statistics.median(values):.1f} us per charge (median of {args.rounds} rounds of "
                  f"{args.calls}; rounds {', '.join(f'{v:.0f}' for v in values)})")
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
