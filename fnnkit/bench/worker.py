"""``python -m fnnkit.bench.worker JOB.json OUT.json``: measure one backend in a fresh process.

A fresh process per backend means one runtime's thread pool, allocator or JIT cache cannot
slow down or speed up the next one, and its peak memory is its own. The outcome, including
a failure, is written as JSON; stdout and stderr are left to the runtimes' own chatter.
"""

from __future__ import annotations

import json
import sys
import traceback


def main(argv: list[str]) -> int:
    from fnnkit.bench.measure import Job, Outcome, measure
    from fnnkit.errors import FnnkitError
    from fnnkit.store import atomic_write_json

    job_path, out_path = argv
    with open(job_path) as f:
        job = Job.from_dict(json.load(f))
    try:
        outcome = measure(job)
    except FnnkitError as exc:
        outcome = Outcome("error", reason=str(exc), error_type=type(exc).__name__)
    except Exception as exc:  # a bug or a runtime crash: the parent shows it with the traceback's tail
        tail = "".join(traceback.format_exception(exc)[-6:])
        outcome = Outcome("error", reason=f"{type(exc).__name__}: {exc}\n{tail}", error_type="")
    atomic_write_json(out_path, outcome.as_dict())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
