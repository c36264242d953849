"""Runs inside the routilux 0.10 virtual environment (see ``rx010_venv.py``).

Times the 10-routine chain on 0.10's sequential strategy and prints one JSON line:
``{"msg_per_s": ...}``. The clock stops when the last message reaches the sink
(0.10's ``wait_for_completion`` polls with a settling delay; leaving that out is
generous to the baseline).

    <venv>/bin/python tests/benchmarks/rx010_chain.py --messages 2000
"""

from __future__ import annotations

import argparse
import json
import time
from importlib.metadata import version

from chain_routines import wire_chain

from routilux import Flow
from routilux.job_state import JobState


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    flow = Flow(execution_strategy="sequential")
    sink = wire_chain(flow)
    for n in (10, args.messages):  # the first job warms up
        sink.arm(n)
        started = time.perf_counter()
        job = flow.execute("r0", {"n": n})
        if not sink.done.wait(600):
            raise SystemExit(f"0.10 chain: {sink.count} of {n} messages arrived")
        elapsed = time.perf_counter() - started
        JobState.wait_for_completion(flow, job, timeout=60)
    print(json.dumps({"msg_per_s": n / elapsed, "version": version("routilux")}))


if __name__ == "__main__":
    main()
