"""Settings of the sources stage: where each source is, how its records map to entries, and collect."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from globmed_data.ids import canonical_json, stable_hash
from globmed_data.settings import FieldRef, Strict, Task, as_list

SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class OptionsSpec(Strict):
    """How a record gives its options.

    list: a list of strings (or a JSON string of one); letter_dict: {"a": "...", "b": ...};
    text: one string "(A) ...\\n(B) ..." (or labels of another script: "أ- ...", "① ..."); objects:
    [{id_field: .., text_field: ..}]; columns: one field per option, named in `fields`;
    inline: the options are in the question's own text, after its stem ("...?\\nA. x\\nB. y").
    `labels`: the label set to look for (default: every known set, in any script).
    """

    style: Literal["list", "letter_dict", "text", "objects", "columns", "inline"] = "list"
    field: FieldRef | None = None
    fields: list[str] | None = None
    id_field: str = "id"
    text_field: str = "text"
    labels: list[str] | None = Field(None, min_length=2)

    @model_validator(mode="after")
    def _field_or_fields(self) -> OptionsSpec:
        if self.style == "columns" and not self.fields:
            raise ValueError("style 'columns' needs `fields`: the option fields in order")
        if self.labels is not None and self.style not in ("text", "inline"):
            raise ValueError("`labels` applies to the styles 'text' and 'inline'")
        if self.style not in ("columns", "inline") and not self.field:
            raise ValueError(f"style '{self.style}' needs `field`: where the options are")
        return self


class AnswerSpec(Strict):
    """How an MCQA record gives its correct option(s).

    letter: "C", "(C)", ["a", "c"] or "A,C"; index: 2 or [0, 2] (see index_base);
    text: the text of the correct option; id: the id of an option object (style objects).
    """

    field: FieldRef
    style: Literal["letter", "index", "text", "id"] = "letter"
    index_base: Literal[0, 1] = 0


FileFormat = Literal["auto", "json", "jsonl", "csv", "tsv", "parquet"]  # "auto": from the suffix


class LabelSpec(Strict):
    """A yes/no/maybe, NLI or classification label; `values` maps raw values (case-insensitive)
    to labels.

    With `choices_field`, the raw value is a letter choosing among that field's texts
    (PubMedQA as a choice list: ["yes", "no", "maybe"], answer "a"). A `classification` source
    declares its closed label set in `labels` (a question's intent, say: "diagnosis",
    "treatment", ...); a value outside it is quarantined as `invalid_label`.
    """

    field: FieldRef
    values: dict[str, str] = Field(default_factory=dict)
    choices_field: str | None = None
    labels: list[str] | None = Field(None, min_length=2)

    @field_validator("labels")
    @classmethod
    def _distinct(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and len({x.casefold() for x in v}) != len(v):
            raise ValueError("`labels` must be distinct (case aside)")
        return v


class ValueSpec(Strict):
    """A per-record value: a constant, a record field, or a regex group on the file path."""

    value: str | None = None
    field: FieldRef | None = None
    pattern: str | None = None
    map: dict[str, str] = Field(default_factory=dict)
    default: str | None = None

    @model_validator(mode="after")
    def _one_way(self) -> ValueSpec:
        given = [x for x in (self.value, self.field, self.pattern) if x is not None]
        if len(given) != 1 and self.default is None:
            raise ValueError("give exactly one of `value`, `field`, `pattern` (or a `default`)")
        if self.pattern is not None:
            try:
                compiled = re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"`pattern` is not a valid regex: {exc}") from exc
            if compiled.groups != 1:
                raise ValueError("`pattern` needs exactly one capture group: the value")
        return self


class KeyPart(Strict):
    """One part of a key computed from a field: the capture of `pattern` (one group), or the
    field with `replace: [PATTERN, WITH]` applied. `{field: _file, pattern: '^(.+)_(?:local|english)'}`
    links `x_local.jsonl` and `x_english.jsonl` through their shared stem."""

    field: str
    pattern: str | None = None
    replace: tuple[str, str] | None = None

    @model_validator(mode="after")
    def _one_way(self) -> KeyPart:
        if (self.pattern is None) == (self.replace is None):
            raise ValueError("a key part needs exactly one of `pattern` (one capture group) or `replace`")
        regex = self.pattern if self.pattern is not None else self.replace[0]  # type: ignore[index]
        try:
            compiled = re.compile(regex)
        except re.error as exc:
            raise ValueError(f"key part on '{self.field}': not a valid regex: {exc}") from exc
        if self.pattern is not None and compiled.groups != 1:
            raise ValueError(f"key part on '{self.field}': `pattern` needs exactly one capture group")
        return self


Key = list[str | KeyPart]  # fields (and computed parts) joined with ":"


def _as_value_spec(value: Any) -> Any:
    return {"value": value} if isinstance(value, str) else value


class MappingSpec(Strict):
    """Declarative field mapping from a raw record to the canonical entry."""

    task: Task
    key: Key | None = None  # fields joined with ":"; absent: a hash of the raw record
    question: FieldRef | None = None
    context: FieldRef | None = None
    options: OptionsSpec | None = None
    answer: AnswerSpec | None = None
    label: LabelSpec | None = None
    premise: FieldRef | None = None
    hypothesis: FieldRef | None = None
    answer_text: FieldRef | None = None
    rationale: FieldRef | None = None
    metadata: dict[str, str] = Field(default_factory=dict)

    _key_list = field_validator("key", mode="before", json_schema_input_type=str | Key | None)(as_list)

    @model_validator(mode="after")
    def _task_fields(self) -> MappingSpec:
        needs = {
            "mcqa": ("question", "options", "answer"),
            "yes_no": ("question", "label"),
            "nli": ("premise", "hypothesis", "label"),
            "open_qa": ("question", "answer_text"),
            "classification": ("question", "label"),
        }[self.task]
        missing = [n for n in needs if getattr(self, n) is None]
        if missing:
            raise ValueError(f"task '{self.task}' needs mapping fields: {', '.join(missing)}")
        if self.label is not None and (self.task == "classification") != (self.label.labels is not None):
            raise ValueError(
                "task 'classification' needs its label set in `label.labels`"
                if self.task == "classification"
                else f"`label.labels` is for task 'classification' (the labels of '{self.task}' are fixed)"
            )
        if self.answer and self.answer.style == "id" and self.options and self.options.style != "objects":
            raise ValueError("answer style 'id' only works with options style 'objects'")
        return self


class TranslationOf(Strict):
    """Records of this source translate records of another: the parent id is derived from these."""

    source: str
    key: Key

    _key_list = field_validator("key", mode="before", json_schema_input_type=str | Key)(as_list)


class SourceBase(Strict):
    name: str
    enabled: bool = True
    preset: str | None = None
    mapping: dict[str, Any] = Field(default_factory=dict)
    format: FileFormat = "auto"
    encoding: str = "utf-8"
    record_path: str | None = None  # JSON files: "data" or "exams.*.data" (* = any key)
    language: Annotated[ValueSpec, Field()] | None = None
    split: Annotated[ValueSpec, Field()] = ValueSpec(value="train")
    license: str | None = None
    origin: Literal["native", "translated"] = "native"
    translation_of: TranslationOf | None = None
    tags: list[str] = Field(default_factory=list)

    @field_validator("language", "split", mode="before", json_schema_input_type=str | ValueSpec | None)
    @classmethod
    def _value(cls, v: Any) -> Any:
        return _as_value_spec(v)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not SOURCE_NAME.match(v):
            raise ValueError("use lower-case letters, digits, '_', '-', '.' (at most 64 chars)")
        return v

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, v: str) -> str:
        import codecs

        try:
            codecs.lookup(v)
        except LookupError as exc:
            raise ValueError(f"unknown encoding '{v}'") from exc
        return v

    @model_validator(mode="after")
    def _resolved_mapping(self) -> SourceBase:
        from globmed_data.sources.presets import PRESETS

        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"unknown preset '{self.preset}'; known: {', '.join(sorted(PRESETS))}")
        if self.language is None:
            raise ValueError('`language` is required: a code ("fr") or a field/pattern spec')
        if self.origin == "translated" and self.translation_of is None:
            raise ValueError("origin 'translated' needs `translation_of` (the parent source and key)")
        self.resolved_mapping()  # raises on an invalid mapping
        return self

    def resolved_mapping(self) -> MappingSpec:
        """The preset's mapping with this source's `mapping` keys laid over it."""
        from globmed_data.sources.presets import PRESETS

        base: dict[str, Any] = dict(PRESETS[self.preset]["mapping"]) if self.preset else {}
        base.update(self.mapping)
        return MappingSpec.model_validate(base)

    def resolved_record_path(self) -> str | None:
        from globmed_data.sources.presets import PRESETS

        if self.record_path is not None or not self.preset:
            return self.record_path
        return PRESETS[self.preset].get("record_path")

    def spec_hash(self) -> str:
        """Changes whenever anything that shapes this source's entries changes."""
        return stable_hash("source-spec", canonical_json(self.model_dump(mode="json")))


class FileSource(SourceBase):
    kind: Literal["files"] = "files"
    paths: list[str]
    exclude: list[str] = Field(default_factory=list)

    _lists = field_validator("paths", "exclude", mode="before", json_schema_input_type=str | list[str])(
        as_list
    )


class HubSource(SourceBase):
    """A dataset repository on the Hugging Face Hub (or a local snapshot of one)."""

    kind: Literal["hub"]
    repo_id: str
    revision: str = "main"
    repo_type: Literal["dataset", "model"] = "dataset"
    files: list[str] = Field(default_factory=lambda: ["*.jsonl", "*.json", "*.parquet", "*.csv", "*.tsv"])
    endpoint: str | None = None
    local_path: str | None = None  # a snapshot folder: read it instead of downloading
    token_env: str = "HF_TOKEN"


Source = Annotated[FileSource | HubSource, Field(discriminator="kind")]


class CollectSettings(Strict):
    batch_size: int = Field(5000, ge=1, le=1_000_000)
    max_record_bytes: int = Field(1 << 20, ge=1024)
    concurrency: int = Field(4, ge=1, le=64)


def files_by_default(v: Any) -> Any:
    """`kind: files` is the default, so most source specs need not say it."""
    if isinstance(v, list):
        return [{"kind": "files", **s} if isinstance(s, dict) and "kind" not in s else s for s in v]
    return v
