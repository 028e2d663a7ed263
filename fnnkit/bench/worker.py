"""``python -m fnnkit.bench.worker JOB.json OUT.json``: measure one job in a fresh process.

Started by ``launch.WorkerProcess`` through ``fnnkit.spawn``. The outcome, including a failure,
is written as JSON; stdout and stderr are left to the runtimes' own chatter.
"""

from __future__ import annotations

import sys

from fnnkit.bench.child import crash_message
from fnnkit.bench.job import Job, Outcome
from fnnkit.bench.launch import InProcess
from fnnkit.bench.records import read_record, save_record


def main(argv: list[str]) -> int:
    job_path, out_path = argv
    job = read_record(Job, job_path, "benchmark job", "fnnkit bench")
    try:
        outcome = InProcess().run(job)
    except Exception as exc:  # a bug or a runtime crash: the parent shows it with the traceback's tail
        outcome = Outcome(status="error", message=crash_message(exc))
    save_record(outcome, out_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
