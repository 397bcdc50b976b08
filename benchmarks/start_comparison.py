"""`qa serve`'s start (two workers, until /api/ready) for checkouts of the project, alternated.

    python benchmarks/start_comparison.py INDEX --rounds 3 main=/path/to/main new=/path/to/new

Each round starts every checkout's `qa serve` once (``PYTHONPATH`` set to the checkout, the
order rotated by round), waits until it is ready, stops it, and prints the seconds; the
end prints one JSON object with every time, the medians and each median's ratio to the
first checkout's. The machine is shared: compare only what was measured in one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from common import start_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("index", type=Path)
    parser.add_argument("checkouts", nargs="+", help="NAME=DIRECTORY of a checkout")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--logs", type=Path, default=Path("/tmp"), help="servers' logs here")
    args = parser.parse_args()
    checkouts = dict(item.split("=", 1) for item in args.checkouts)
    names = list(checkouts)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(args.rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            began = time.perf_counter()
            server, _url = start_server(
                args.index,
                env={"PYTHONPATH": checkouts[name], "QA_RATE_LIMIT": ""},
                log=args.logs / f"start-{name}.log",
            )
            times[name].append(round(time.perf_counter() - began, 2))
            server.terminate()
            server.wait(timeout=60)
            time.sleep(2)  # the port and the workers' memory released
        print(round_, {name: values[-1] for name, values in times.items()}, flush=True)
    medians = {name: statistics.median(values) for name, values in times.items()}
    first = medians[names[0]]
    print(
        json.dumps(
            {
                "times": times,
                "median": medians,
                "ratio": {name: round(m / first, 3) for name, m in medians.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
