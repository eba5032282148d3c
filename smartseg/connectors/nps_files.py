"""NPS survey answers from exported files, as `nps_response` rows (read only, no database).

Rows carry source "nps:file" and a `source_id`: the export's response id, or, when the file has
none, a hash of the respondent's email and answer time, so re-reading a file upserts the same
rows. `account_key` (the product's workspace id) and `email` are left for the framework to link.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeAlias

from smartseg.config.sources import FileInput
from smartseg.connectors.files import (
    Column,
    FileChunk,
    NpsFileError,
    Piece,
    Reject,
    block_records,
    convert_records,
    read_blocks,
    read_exports,
)
from smartseg.connectors.row_values import BadValue, parse_count, parse_text, parse_timestamp

__all__ = ["MAX_COMMENT_CHARS", "NPS_SOURCE", "NpsChunk", "NpsFileError", "read_nps"]

NPS_SOURCE = "nps:file"
MAX_COMMENT_CHARS = 4_000

_COLUMNS = (
    Column("response_id", ("response_id", "id", "survey_response_id"), required=False),
    Column("email", ("email", "user_email", "respondent_email", "contact_email"), required=False),
    Column("workspace_id", ("workspace_id", "workspace", "account_key"), required=False),
    Column("score", ("score", "nps", "nps_score", "rating")),
    Column("responded_at", ("responded_at", "submitted_at", "answered_at", "created_at", "date")),
    # Long comments are truncated, not rejected: the answer itself is still good.
    Column("comment", ("comment", "comments", "feedback", "reason"), False, max_chars=None),
)


# Up to `chunk_rows` NPS rows and the rejects met while reading them.
NpsChunk: TypeAlias = FileChunk


def read_nps(spec: FileInput, *, chunk_rows: int = 10_000) -> Iterator[NpsChunk]:
    """Read every NPS export `spec.path` matches (sorted), yielding validated answers.

    Raises NpsFileError for a file that cannot be read at all; bad rows become rejects.
    """
    return read_exports(spec, chunk_rows, error=NpsFileError, pieces=_pieces)


def _pieces(path: Path, spec: FileInput, chunk_rows: int) -> Iterator[Piece]:
    # Survey exports are small: every row goes through the row-by-row checks.
    for item in read_blocks(path, spec.format, _COLUMNS, error=NpsFileError):
        if isinstance(item, Reject):
            yield [], [item]
        else:
            records = block_records(item, _COLUMNS, path)
            yield from convert_records(records, _row, file=path, piece_rows=chunk_rows)


def _row(values: tuple[object, ...]) -> dict[str, Any]:
    response_id, email, workspace, score, responded_at, comment = values
    answered = parse_timestamp(responded_at, "responded_at")
    mail = parse_text(email, "email", required=False).lower()
    ident = parse_text(response_id, "response_id", required=False)
    if not ident:
        if not mail:
            raise BadValue("no response_id and no email: the answer cannot be identified")
        text = f"{mail}\x1f{answered.isoformat()}"
        ident = "h:" + hashlib.sha256(text.encode()).hexdigest()[:32]
    points = parse_count(score, "score")
    if points > 10:
        raise BadValue("score outside 0..10", score)
    note = parse_text(comment, "comment", required=False)
    return {
        "source": NPS_SOURCE,
        "source_id": ident,
        "email": mail or None,
        "account_key": parse_text(workspace, "workspace_id", required=False) or None,
        "score": points,
        "responded_at": answered,
        "comment": note[:MAX_COMMENT_CHARS] or None,
    }
