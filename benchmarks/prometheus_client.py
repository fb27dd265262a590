"""CPU per instant query on the operator's side: prometheus-api-client (a requests session) against the pooled
client the operator uses (`overspill.adapters.prometheus_http`).

`python -m benchmarks.prometheus_client --queries 2000 --rounds 5`. A Prometheus-shaped server runs in a separate
process on loopback (so its CPU is not counted); each round times `--queries` queries of each client by this
process's CPU time, the clients alternating. Writes benchmarks/results/prometheus_client.json (medians of the rounds).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from benchmarks.common import summarize, write

BODY = json.dumps(
    {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1.0, "12"]}]}}
).encode()
QUERY = 'sum(overspill_lab_queue_depth{queue="w-0001"})'


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *_: object) -> None:
        pass


def _serve(port: int) -> None:
    ThreadingHTTPServer(("127.0.0.1", port), _Handler).serve_forever()


def _cpu_per_query(fetch: object, n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        fetch()  # type: ignore[operator]
    return (time.process_time() - start) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--port", type=int, default=18777)
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        _serve(args.port)
        return
    from prometheus_api_client import PrometheusConnect

    from overspill.adapters.prometheus_http import PrometheusHttp

    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.prometheus_client", "--serve", "--port", str(args.port)]
    )
    try:
        url = f"http://127.0.0.1:{args.port}"
        for _ in range(50):
            try:
                PrometheusHttp().query(url, QUERY, 1.0)
                break
            except Exception:
                time.sleep(0.1)
        old = PrometheusConnect(url=url, disable_ssl=False)
        new = PrometheusHttp()
        samples: dict[str, list[float]] = {"prometheus_api_client": [], "pooled": []}
        for _ in range(args.rounds):
            samples["prometheus_api_client"].append(
                _cpu_per_query(lambda: old.custom_query(QUERY, params={"timeout": "5000ms"}, timeout=5), args.queries)
            )
            samples["pooled"].append(_cpu_per_query(lambda: new.query(url, QUERY, 5.0), args.queries))
    finally:
        server.kill()
    old_s, new_s = summarize(samples["prometheus_api_client"]), summarize(samples["pooled"])
    write(
        "prometheus_client",
        {
            "command": f"python -m benchmarks.prometheus_client --queries {args.queries} --rounds {args.rounds}",
            "load_average": os.getloadavg()[0],
            "cpu_microseconds_per_query": {"prometheus_api_client": old_s, "pooled": new_s},
            "ratio_pooled_to_prometheus_api_client": round(new_s["median"] / old_s["median"], 2),
        },
    )


if __name__ == "__main__":
    main()
