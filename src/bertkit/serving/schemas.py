"""Request and response bodies of the HTTP service (pydantic models; unknown fields are refused)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, model_validator

Label = str | int | float | bool


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PredictRequest(_Strict):
    """Either ``texts`` or ``pairs`` (``[[text, text_pair], ...]``), not both."""

    texts: list[StrictStr] | None = Field(None, min_length=1, examples=[["a wonderful, moving film"]])
    pairs: list[tuple[StrictStr, StrictStr]] | None = Field(None, min_length=1, examples=[[["a cat", "a small cat"]]])
    top_k: StrictInt | None = Field(None, ge=1, description="Keep only the k most likely labels in `probabilities`.")

    @model_validator(mode="after")
    def _one_input(self) -> PredictRequest:
        nulls = [name for name in ("texts", "pairs") if name in self.model_fields_set and getattr(self, name) is None]
        if nulls and self.texts is None and self.pairs is None:
            raise ValueError(
                f"'{nulls[0]}' is null; give 'texts' (a list of strings) or 'pairs' (a list of [text, text_pair])"
            )
        if (self.texts is None) == (self.pairs is None):
            raise ValueError("give either 'texts' (a list of strings) or 'pairs' (a list of [text, text_pair])")
        return self


class Prediction(BaseModel):
    label: Label | None = Field(description="The most likely label (None for regression).")
    score: float = Field(description="Its probability (the predicted value for regression).")
    probabilities: dict[str, float] = Field(description="Label -> probability, in the model's label order "
                                            "(most likely first when top_k is given).")  # fmt: skip
    labels: list[Label] | None = Field(None, description="Multi-label models: every label over its threshold.")


class PredictResponse(BaseModel):
    predictions: list[Prediction] = Field(description="One per input text or pair, in input order.")


class EmbedRequest(_Strict):
    texts: list[StrictStr] = Field(min_length=1, examples=[["a wonderful, moving film"]])
    normalize: StrictBool = Field(False, description="Scale each vector to unit length.")


class EmbedResponse(BaseModel):
    embeddings: list[list[float]] = Field(description="One mean-pooled vector per text, in input order.")
    dimension: int


class QARequest(_Strict):
    questions: list[StrictStr] = Field(min_length=1)
    contexts: list[StrictStr] = Field(min_length=1, description="One context per question.")

    @model_validator(mode="after")
    def _same_length(self) -> QARequest:
        if len(self.questions) != len(self.contexts):
            raise ValueError(
                f"{len(self.questions)} questions but {len(self.contexts)} contexts; give one per question"
            )
        return self


class QAResponse(BaseModel):
    answers: list[Any] = Field(description="One answer per question, in input order.")


class TagRequest(_Strict):
    texts: list[StrictStr] = Field(min_length=1)


class TagResponse(BaseModel):
    tags: list[Any] = Field(description="The tagged spans of each text, in input order.")


class Info(BaseModel):
    kind: str
    task: str
    labels: list[Label]
    folder: str = Field(description="The model folder's name (fixed when the server started).")
    endpoints: list[str]
    limits: dict[str, int | float]
    embedding_dimension: int | None
    version: str
    model: dict[str, Any] = Field(description="Training metadata: base model, max length, validation metrics...")


class Status(BaseModel):
    status: str
    detail: str | None = None
