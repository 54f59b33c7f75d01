"""Search filters as Milvus boolean expressions.

Milvus Lite cannot bind expression parameters, so every value is checked again here, however
it was validated before, and only then written as a literal: video ids through
:func:`~agents.shared.milvus_store.id_literal`, labels against :data:`LABEL_PATTERN` and
quoted by JSON, times as finite floats. Nothing from a request is pasted in as it came.
"""

from __future__ import annotations

import json
import math
import re

from agents.shared.milvus_store import id_literal
from query_service.schemas import LABEL_PATTERN, SearchFilters

_LABEL = re.compile(LABEL_PATTERN)


class UnsafeExpressionValue(ValueError):
    """A value that will not be put into a Milvus expression."""


def _number(value: float) -> str:
    if not math.isfinite(value):
        raise UnsafeExpressionValue(f"not a finite number: {value!r}")
    return repr(float(value))


def label_literal(label: str) -> str:
    if not _LABEL.match(label):
        raise UnsafeExpressionValue(f"not a label: {label!r}")
    return json.dumps(label)


def _label_clause(label: str) -> str:
    """``labels`` holds the moment's labels joined by commas: match one whole label."""
    label_literal(label)
    return (
        f'(labels == "{label}" or labels like "{label},%" or labels like "%,{label}" '
        f'or labels like "%,{label},%")'
    )


def milvus_expression(filters: SearchFilters) -> str:
    """The expression selecting the moments every given filter admits ("" for none)."""
    clauses: list[str] = []
    if filters.video_ids:
        clauses.append(f"video_id in [{', '.join(id_literal(v) for v in filters.video_ids)}]")
    if filters.time_range is not None:
        clauses.append(f"end >= {_number(filters.time_range.start)}")
        if filters.time_range.end is not None:
            clauses.append(f"start <= {_number(filters.time_range.end)}")
    for label in filters.labels or []:
        clauses.append(_label_clause(label))
    return " and ".join(clauses)


def both(*expressions: str) -> str:
    return " and ".join(e for e in expressions if e)
