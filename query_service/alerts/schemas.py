"""Request and response schemas of /v1/alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from query_service.schemas import NOT_BLANK_PATTERN, Integer, Label, VideoId

RULE_ID_PATTERN = r"^r[0-9a-f]{24}$"
MIN_SECRET_CHARS = 16
TextSource = Literal["ocr", "transcript"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("is blank")
    return value


_NOT_BLANK = AfterValidator(_not_blank)
_SHOWN_NOT_BLANK = {"pattern": NOT_BLANK_PATTERN}
Name = Annotated[
    str, _NOT_BLANK, Field(min_length=1, max_length=200, json_schema_extra=_SHOWN_NOT_BLANK)
]
Phrase = Annotated[
    str, _NOT_BLANK, Field(min_length=1, max_length=200, json_schema_extra=_SHOWN_NOT_BLANK)
]
Query = Annotated[
    str, _NOT_BLANK, Field(min_length=1, max_length=1000, json_schema_extra=_SHOWN_NOT_BLANK)
]


class LabelRule(_Strict):
    """Fires when one keyframe of a moment shows at least ``min_count`` of ``label`` (object
    detections; any case, singular or plural, and common synonyms such as bike/bicycle)."""

    kind: Literal["label"]
    label: Label
    min_count: Integer = Field(default=1, ge=1, le=100)


class TextRule(_Strict):
    """Fires when the moment's on-screen text or speech holds ``phrase``: whole words, any
    case, white space collapsed. A plain phrase, not a pattern."""

    kind: Literal["text"]
    phrase: Phrase
    sources: list[TextSource] = Field(default=["ocr", "transcript"], min_length=1, max_length=2)

    @field_validator("sources")
    @classmethod
    def _distinct(cls, value: list[TextSource]) -> list[TextSource]:
        if len(set(value)) != len(value):
            raise ValueError("sources repeat")
        return value


class SemanticRule(_Strict):
    """Fires when the moment's description is within ``min_score`` cosine similarity of
    ``query`` (embedded once, when the rule is made, by the model that embeds moments)."""

    kind: Literal["semantic"]
    query: Query
    min_score: float = Field(default=0.5, ge=0, le=1)


RuleCondition = Annotated[LabelRule | TextRule | SemanticRule, Field(discriminator="kind")]


class AlertRuleCreate(_Strict):
    name: Name
    feed_id: VideoId | None = Field(
        default=None, description="The live feed or video to watch; none watches every one."
    )
    condition: RuleCondition
    webhook_url: str | None = Field(
        default=None,
        max_length=2048,
        description="Where alerts are POSTed (http or https; no credentials, query or fragment).",
    )
    webhook_secret: str | None = Field(
        default=None,
        min_length=MIN_SECRET_CHARS,
        max_length=256,
        description="Signs each webhook body (HMAC-SHA256); one is made when not given.",
    )

    @model_validator(mode="after")
    def _secret_needs_webhook(self) -> AlertRuleCreate:
        if self.webhook_secret is not None and self.webhook_url is None:
            raise ValueError("webhook_secret is given without a webhook_url")
        return self


class ConditionPublic(BaseModel):
    kind: Literal["label", "text", "semantic"]
    label: str | None = None
    min_count: int | None = None
    phrase: str | None = None
    sources: list[TextSource] | None = None
    query: str | None = None
    min_score: float | None = None
    model: str | None = Field(default=None, description="The model that embedded the query.")


class AlertRulePublic(BaseModel):
    rule_id: str
    name: str
    feed_id: str | None
    condition: ConditionPublic
    webhook_url: str | None = Field(
        description="The webhook's scheme and host; its path is not shown (it may be a secret)."
    )
    created_at: datetime


class AlertRuleCreated(AlertRulePublic):
    webhook_secret: str | None = Field(
        description="The webhook signing secret: shown now and never again."
    )


class AlertRulesPublic(BaseModel):
    data: list[AlertRulePublic]
    count: int


class AlertClipPublic(BaseModel):
    video_id: str
    start: float
    end: float
    media_url: str = Field(
        description="The source with a media fragment (#t=start,end) that plays the clip."
    )
    thumbnail_url: str | None = None


class AlertMatchPublic(BaseModel):
    kind: Literal["label", "text", "semantic"]
    label: str | None = None
    count: int | None = None
    phrase: str | None = None
    source: TextSource | None = None
    excerpt: str | None = None
    query: str | None = None


class AlertPublic(BaseModel):
    """One raised alert: the SSE ``alert`` event's data and the webhook's body."""

    alert_id: str = Field(description="The same for the same rule and moment: deduplicate on it.")
    rule_id: str
    rule_name: str
    video_id: str = Field(description="The live feed's or uploaded video's id.")
    moment_id: str
    clip: AlertClipPublic
    matched: AlertMatchPublic
    score: float
    occurred_at: datetime = Field(description="When the alert was raised.")
    moment_at: datetime = Field(description="When the moment was embedded.")
