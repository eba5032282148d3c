"""`smartseg run --once JOB`, with the clock fixed: the process the crash tests kill.

The same Worker, lease, migration and steps as the command, built the way the command builds
them; only the clock is passed in, so that a run killed and restarted evaluates at the same
instant as the reference it is compared with (the CLI reads the wall clock, which has no place
in a comparison). Usage: python crash_worker.py CONFIG JOB NOW REPLICA
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

from smartseg.config import load_config
from smartseg.logs import setup_logging
from smartseg.store import database_url, make_engine
from smartseg.worker.service import Worker


def main(argv: list[str]) -> int:
    config_path, job, now, replica = argv
    instant = dt.datetime.fromisoformat(now)
    setup_logging()
    config = load_config(Path(config_path))
    engine = make_engine(database_url(config.database_url, {}))
    outcome = Worker(config, engine, replica=replica, clock=lambda: instant).run_once(job)
    print(json.dumps(outcome.as_json()), flush=True)
    return 0 if outcome.status == "ok" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
