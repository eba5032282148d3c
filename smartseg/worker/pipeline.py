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
from smartseg.errors import SmartsegError
from smartseg.segmenter.evaluate import evaluate
from smartseg.store import upgrade
from smartseg.sync.plan import plan_sync
from smartseg.sync.playbooks import load_playbooks
from smartseg.sync.run import execute
from smartseg.worker.segments import rules_for
from smartseg.worker.sync_commands import build_targets

__all__ = ["STEPS", "PipelineResult", "StepFailed", "evaluate_step", "pull_step",
           "run_pipeline", "sync_step"]  # fmt: skip

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


def pull_step(engine: Engine, config: Config, clock: Clock) -> dict[str, Any]:
    upgrade(engine)
    result = run_pull(engine, config, clock=clock)
    summary = result.as_dict()
    if not result.ok:
        failed = [k for k, s in result.streams.items() if s.error]
        raise StepFailed(f"pull failed for {', '.join(failed)} (run {result.run_id})")
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
