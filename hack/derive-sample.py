"""Derive tests/data/azure-code-queue-sample.csv: the queue depth of the Azure code trace served by a fixed
pool of 8 replicas (150 token-units/s each), sampled every 10 s. A small aggregate the unit tests and the
offline demo can use without ../shared.

    PYTHONPATH=operator .venv/bin/python hack/derive-sample.py \
        ../shared/traces/azure-llm-2023-code.csv > tests/data/azure-code-queue-sample.csv
"""

import sys
from collections import deque

from overspill.traces import RequestLog, load

REPLICAS, TPS, SAMPLE = 8, 150.0, 10

log = load(sys.argv[1])
assert isinstance(log, RequestLog)
print("# Derived from the Azure LLM inference trace 2023 (code), CC-BY 4.0: Patel, Choukse, Zhang, Shah, Goiri,")
print("# Maleki, Bianchini, 'Splitwise: Efficient generative LLM inference using phase splitting', ISCA 2024.")
print("# Queue depth with 8 fixed replicas at 150 token-units/s; see hack/derive-sample.py.")
print("t_seconds,value")
queue: deque[float] = deque()
i, t = 0, 0
while t <= log.duration:
    while i < len(log.requests) and log.requests[i].t <= t:
        queue.append(log.requests[i].work)
        i += 1
    if t % SAMPLE == 0:
        print(f"{t},{len(queue)}")
    budget = REPLICAS * TPS
    while queue and budget > 0:
        take = min(queue[0], budget)
        budget -= take
        if take >= queue[0]:
            queue.popleft()
        else:
            queue[0] -= take
    t += 1
