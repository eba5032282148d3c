"""The three steps of smartseg's work and the chain that runs them in order.

`run_pipeline` runs pull, then evaluate, then sync; a step runs only when the one before it
succeeded (an evaluation on a failed pull would compute segments from half-fresh data, and a
sync would then write them). Each step is also a job of its own for `smartseg run` schedules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from smartseg.config import Config
from smartseg.connectors.pull import run_pull
from smartseg.connectors.runner import PullResult
from smartseg.errors import SmartsegError
from smartseg.segmenter.evaluate import evaluate
from smartseg.store import upgrade
from smartseg.sync.plan import plan_sync
from smartseg.sync.playbooks import load_playbooks
from smartseg.sync.run import execute
from smartseg.worker.segments import rules_for
from smartseg.worker.sync_commands import build_targets

__all__ = ["STEPS", "PipelineResult", "StepFailed", "evaluate_step", "pull_failure",
           "pull_step", "run_pipeline", "sync_step"]  # fmt: skip

Clock = Callable[[], dt.datetime]


class StepFailed(SmartsegError):
    """A step finished but reported failures (some streams or records); later steps skip."""


@dataclass(slots=True)
class PipelineResult:
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed_step: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.failed_step is None


def pull_failure(result: PullResult) -> StepFailed:
    """Which streams failed and, once each, why.

    The reasons belong in the step's own error: it is what `smartseg status`, /healthz and the
    job log show. Naming only the streams left a revoked token or a wrong field name to be dug
    out of the pull's run row."""
    failed = [key for key, stream in result.streams.items() if stream.error]
    reasons = list(dict.fromkeys(s.error for s in result.streams.values() if s.error))
    shown = "; ".join(reasons[:3]) + (f"; and {len(reasons) - 3} more" if len(reasons) > 3 else "")
    return StepFailed(f"pull failed for {', '.join(failed)} (run {result.run_id}): {shown}")


def pull_step(engine: Engine, config: Config, clock: Clock) -> dict[str, Any]:
    upgrade(engine)
    result = run_pull(engine, config, clock=clock)
    summary = result.as_dict()
    if not result.ok:
        raise pull_failure(result)
    return summary


def evaluate_step(engine: Engine, config: Config, clock: Clock) -> dict[str, Any]:
    result = evaluate(engine, rules_for(config), as_of=clock(), tz=config.tz)
    return result.as_json()


def sync_step(engine: Engine, config: Config, clock: Clock) -> dict[str, Any]:
    rules = rules_for(config)
    now = clock()
    plan = plan_sync(engine, config, rules, load_playbooks(config.playbooks_dir, rules), now=now)
    result = execute(engine, plan, build_targets(config), now=now)
    if result.failed:
        raise StepFailed(
            f"sync run {result.run_id}: {result.failed} records or tasks failed; they are "
            "retried on the next run"
        )
    return result.as_json()


STEPS: dict[str, Callable[[Engine, Config, Clock], dict[str, Any]]] = {
    "pull": pull_step,
    "evaluate": evaluate_step,
    "sync": sync_step,
}


def run_pipeline(engine: Engine, config: Config, clock: Clock) -> PipelineResult:
    """pull -> evaluate -> sync, stopping at the first step that fails."""
    result = PipelineResult()
    for name, step in STEPS.items():
        try:
            result.steps[name] = step(engine, config, clock)
        except SmartsegError as exc:
            result.failed_step, result.error = name, str(exc)
            break
    return result
