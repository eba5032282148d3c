"""Retries for source calls: one policy, driven by the error table, built on tenacity."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from smartseg.connectors.errors import Action, ConnectorError, Decision, Failure, classify

__all__ = ["DEFAULT_POLICY", "RetryPolicy", "call"]

T = TypeVar("T")
log = logging.getLogger("smartseg.connectors")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff from `base` seconds up to `cap`, at most `attempts` tries in all.

    A server's Retry-After wins over the backoff when longer, up to `max_retry_after`; a longer
    demand fails the call so a run never sleeps for an hour unattended.
    """

    attempts: int = 6
    base: float = 0.5
    cap: float = 30.0
    max_retry_after: float = 120.0
    reauth_attempts: int = 2


DEFAULT_POLICY = RetryPolicy()


def call(
    fn: Callable[[], T],
    *,
    source: str,
    stream: str,
    policy: RetryPolicy = DEFAULT_POLICY,
    reauth: Callable[[], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `fn`, retrying what the error table says is retryable; raise ConnectorError otherwise."""
    reauths = 0

    def retryable(exc: BaseException) -> bool:
        nonlocal reauths
        decision = classify(exc)
        if (
            decision.action is Action.REAUTH
            and reauth is not None
            and reauths < policy.reauth_attempts
        ):
            reauths += 1
            log.info("%s %s: %s; signing in again", source, stream, decision.message)
            reauth()
            return True
        if decision.action is not Action.RETRY:
            return False
        return decision.retry_after is None or decision.retry_after <= policy.max_retry_after

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        backoff = min(policy.cap, policy.base * 2 ** (state.attempt_number - 1))
        decision = classify(exc) if exc else None
        if decision is not None and decision.action is Action.REAUTH:
            return 0.0
        server_wait = decision.retry_after if decision and decision.retry_after else 0.0
        return max(backoff, server_wait)

    def log_retry(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if exc is not None:
            log.warning(
                "%s %s: %s; attempt %d of %d",
                source,
                stream,
                classify(exc).message,
                state.attempt_number,
                policy.attempts,
            )

    retrying = Retrying(
        retry=retry_if_exception(retryable),
        wait=wait,
        stop=stop_after_attempt(policy.attempts),
        sleep=sleep,
        before_sleep=log_retry,
        reraise=True,
    )
    try:
        return retrying(fn)
    except ConnectorError:
        raise
    except Exception as exc:
        decision = classify(exc)
        if decision.action is not Action.FAIL:
            asked = decision.retry_after
            if decision.action is not Action.RETRY:
                message = (
                    f"{decision.message}; signing in again did not help, check the credentials"
                )
            elif asked is not None and asked > policy.max_retry_after:
                # Given up at once, not after `attempts` tries: say so, and what happens next.
                message = (
                    f"{decision.message}: the server asked to wait {asked:g}s, longer than the "
                    f"{policy.max_retry_after:g}s smartseg waits; the next run tries again"
                )
            else:
                message = f"{decision.message} (gave up after {policy.attempts} attempts)"
            decision = Decision(
                Action.FAIL,
                decision.failure if decision.action is Action.RETRY else Failure.CONFIG,
                message,
                decision.retry_after,
                decision.status,
            )
        raise ConnectorError(source, stream, decision) from exc
