"""Alert rules as the compacted ``alerts.rules`` topic stores them, one record per rule id.

A rule watches one video or live feed (``feed_id``), or every one (``None``), and fires on a
moment whose analysis holds enough of a label, whose on-screen text or speech holds a phrase,
or whose description is close enough to a query (the query's vector is computed once, when
the rule is created). Rules are not pipeline events about a video, so they are not
``streams.records.Event``s; they are versioned the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.alerts.exceptions import MalformedRule

RULE_TYPE: Final = "AlertRuleSaved"
TextSource = Literal["ocr", "transcript"]


def _now() -> datetime:
    return datetime.now(UTC)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LabelCondition(_Frozen):
    """At least ``min_count`` detections of ``label`` in one keyframe of the moment."""

    kind: Literal["label"] = "label"
    label: str = Field(min_length=1, max_length=64)
    min_count: int = Field(default=1, ge=1, le=100)


class TextCondition(_Frozen):
    """``phrase`` read on screen (OCR) or heard (transcript): whole words, any case."""

    kind: Literal["text"] = "text"
    phrase: str = Field(min_length=1, max_length=200)
    sources: tuple[TextSource, ...] = Field(default=("ocr", "transcript"), min_length=1)


class SemanticCondition(_Frozen):
    """The moment's description vector within ``min_score`` cosine of the query's."""

    kind: Literal["semantic"] = "semantic"
    query: str = Field(min_length=1, max_length=1000)
    min_score: float = Field(ge=-1, le=1)
    # The query embedded by the model that embeds moments ("text_embedding:<version>"): a
    # moment embedded by another model version is not compared.
    model: str = Field(min_length=1)
    vector: tuple[float, ...] = Field(min_length=1)


Condition = Annotated[
    LabelCondition | TextCondition | SemanticCondition, Field(discriminator="kind")
]


class AlertRule(_Frozen):
    type: Literal["AlertRuleSaved"] = "AlertRuleSaved"
    version: Literal[1] = 1
    rule_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    feed_id: str | None = Field(default=None, description="None: every video and feed")
    condition: Condition
    webhook_url: str | None = None
    # Kept in the clear on the internal topic: the worker signs with it. The API shows it once.
    webhook_secret: str | None = None
    created_at: datetime = Field(default_factory=_now)

    def watches(self, video_id: str) -> bool:
        return self.feed_id is None or self.feed_id == video_id


def encode_rule(rule: AlertRule) -> bytes:
    return orjson.dumps(rule.model_dump(mode="json"))


def decode_rule(raw: bytes | str) -> AlertRule:
    """One rule record; MalformedRule says what is wrong with anything else."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedRule(f"value is not JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("type") != RULE_TYPE:
        found = data.get("type") if isinstance(data, dict) else type(data).__name__
        raise MalformedRule(f"expected an {RULE_TYPE} record, got {found!r}")
    if data.get("version") != 1:
        raise MalformedRule(f"{RULE_TYPE} version {data.get('version')!r} is not supported")
    try:
        return AlertRule.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise MalformedRule(f"invalid {RULE_TYPE}: {problems}") from exc
