"""Declarative field mapping: a raw record in, a canonical entry out (or a reason it can't be).

Every failure is a MappingError with a reason code from QUARANTINE_REASONS, so the
caller can quarantine the record and go on.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from globmed_data.ids import canonical_json, content_hashes, entry_id, entry_ids, stable_hash
from globmed_data.schema import ENTRY_COLUMNS
from globmed_data.settings import FieldRef
from globmed_data.sources.columns import UNDECIDED, Columns
from globmed_data.sources.normalize import (
    clean_text,
    is_clean,
    split_labelled_options,
    strip_option_labels,
)
from globmed_data.sources.option_labels import label_index, split_options
from globmed_data.sources.settings import (
    AnswerSpec,
    KeyPart,
    LabelSpec,
    MappingSpec,
    OptionsSpec,
    SourceBase,
    ValueSpec,
)

# Reason codes a record can be quarantined with (documented in docs/configuration.md).
QUARANTINE_REASONS = {
    "malformed_json": "the line is not valid JSON",
    "malformed_row": "a CSV/TSV row whose cell count differs from the header",
    "bad_encoding": "bytes that are not valid in the source's encoding, or a lone surrogate escape (\\ud800)",
    "not_an_object": "a JSON value that is not an object",
    "record_too_large": "larger than collect.max_record_bytes",
    "missing_key": "a key field named in the mapping is absent",
    "duplicate_key": "another record of the same source has the same key",
    "duplicate_record": "an identical record already stands earlier in the same (keyless) source",
    "missing_field": "a required field (question, premise, ...) is absent or empty",
    "missing_options": "an MCQA record without options",
    "unparseable_options": "options of an unexpected shape, or a string that is not a list or dict",
    "too_few_options": "fewer than two non-empty options",
    "missing_answer": "no answer / label given",
    "invalid_answer": "the answer cannot be read in the declared style",
    "answer_out_of_range": "the answer names an option that does not exist",
    "invalid_label": "a label outside the task's label set",
    "missing_language": "no language could be determined",
    "invalid_language": "the language is not a language code",
    "file_unreadable": "the whole file could not be read (not JSON, wrong record_path...)",
}
YES_NO_LABELS = ("yes", "no", "maybe")
NLI_LABELS = ("entailment", "neutral", "contradiction")
_DEFAULT_LABELS = {
    "yes_no": {
        "yes": "yes",
        "no": "no",
        "maybe": "maybe",
        "y": "yes",
        "n": "no",
        "true": "yes",
        "false": "no",
    },
    "nli": {
        "entailment": "entailment",
        "neutral": "neutral",
        "contradiction": "contradiction",
        "e": "entailment",
        "n": "neutral",
        "c": "contradiction",
    },
}
SPLITS = {
    "train": "train",
    "training": "train",
    "dev": "validation",
    "val": "validation",
    "valid": "validation",
    "validation": "validation",
    "test": "test",
    "testing": "test",
}
_LANG = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
_LETTER_TOKENS = re.compile(r"[\s,;/&+、，・]+")
_NO_ANSWER = {"na", "n/a", "none", "null", "nan", "-", "?"}
# The entry's fields that a task may leave empty: None until the mapping sets them.
_TASK_FIELDS = (
    "question", "context", "options", "answer_indices", "label", "premise", "hypothesis", "answer",
)  # fmt: skip
_TEXT_FIELDS = ("question", "context", "premise", "hypothesis", "answer_text", "rationale")
_MISSING = object()
_EMPTY = (None, "", [], {})  # absent or empty: no options, a metadata value left out


class MappingError(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def get_field(record: dict[str, Any], ref: FieldRef | None, extra: dict[str, Any]) -> Any:
    """Look a (dotted) field up; with a list of candidates the first present one wins."""
    if ref is None:
        return None
    for candidate in [ref] if isinstance(ref, str) else ref:
        value = _lookup(record, candidate, extra)
        if value is not _MISSING:
            return value
    return None


Getter = Callable[[dict[str, Any], dict[str, Any]], Any]  # (record, extra) -> the field's value


def field_getter(ref: FieldRef | None) -> Getter:
    """get_field for one reference, decided once per source. A plain name (no dot, not a
    synthetic field such as `_file`, which all start with "_") is a dict lookup, or the first of
    a few candidates present: the same value, without walking a path per record."""
    if ref is None:
        return lambda record, extra: None
    names = [ref] if isinstance(ref, str) else list(ref)
    if not all(_is_plain(name) for name in names):
        return lambda record, extra: get_field(record, ref, extra)
    if len(names) == 1:
        name = names[0]
        return lambda record, extra: record.get(name)

    def first_present(record: dict[str, Any], extra: dict[str, Any]) -> Any:
        for name in names:
            if name in record:
                return record[name]
        return None

    return first_present


def plain_name(ref: FieldRef | None) -> str | None:
    """The one key a reference looks up when it is a plain name (what field_getter reads with
    `record.get`); None for anything else."""
    return ref if isinstance(ref, str) and _is_plain(ref) else None


def _is_plain(name: str) -> bool:
    return "." not in name and not name.startswith("_")


def _lookup(record: dict[str, Any], path: str, extra: dict[str, Any]) -> Any:
    if path in extra:
        return extra[path]
    if path in record:
        return record[path]
    node: Any = record
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, bool | int | float):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return clean_text("\n".join(value))
    raise MappingError("missing_field", f"expected text, got {type(value).__name__}")


def _texts(values: list[Any]) -> list[str | None]:
    """_text of each value. A text with nothing for clean_text to change but its ends is
    stripped inline: printable ASCII by clean_text's own first test (most fields) with no call,
    any other by is_clean alone."""
    return [
        v.strip()
        if type(v) is str
        and ((v.isascii() and v.isprintable() and "&" not in v and "  " not in v) or is_clean(v))
        else _text(v)
        for v in values
    ]


_LETTERS = [chr(ord("A") + i) for i in range(64)]  # a list option's id by its place


def _lower_text(key: Any) -> str:
    return str(key).lower()


def _structured(value: Any) -> Any:
    """A list or dict stored as a string (a CSV cell, say): JSON, else a Python literal such as
    `{'A': 'x', 'B': 'y'}`. Other values are returned as they are."""
    if not isinstance(value, str) or not value.strip().startswith(("[", "{")):
        return value
    text = value.strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)  # literals only: never runs code
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise MappingError(
            "unparseable_options", f"neither JSON nor a Python literal: {text[:60]!r}"
        ) from None


def key_value(record: dict[str, Any], part: str | KeyPart, extra: dict[str, Any]) -> str | None:
    """One key part of a record as text (see key_text)."""
    return key_text(get_field(record, _key_field(part), extra), part)


def _key_field(part: str | KeyPart) -> str:
    return part if isinstance(part, str) else part.field


def key_text(value: Any, part: str | KeyPart) -> str | None:
    """A key field's value as key text: the value, or a capture or replacement of it (None:
    absent, or the pattern does not match)."""
    if value is None or value == "":
        return None
    text = str(value)
    if isinstance(part, str):
        return text
    if part.pattern is not None:
        m = re.search(part.pattern, text)
        return m.group(1) if m and m.group(1) else None
    assert part.replace is not None
    return re.sub(part.replace[0], part.replace[1], text) or None


def _key_name(part: str | KeyPart) -> str:
    return part if isinstance(part, str) else f"{part.field} ({part.pattern or part.replace})"


def _shape(value: Any) -> str:
    if isinstance(value, str):
        return f"the text {value[:40]!r}" + (
            " (for option text like '(A) ...', use style: text)" if value else ""
        )
    return type(value).__name__


def _letter_indices(token: str, item: Any) -> list[int]:
    """'C', '(c)', 'C.' -> [2]; a run of distinct letters '(ACE)' -> [0, 2, 4].

    Alternatives ('a or d': either was accepted) and words are refused.
    """
    if token.lower() == "or":
        raise MappingError("invalid_answer", f"{item!r} gives alternative answers, not one answer set")
    letters = token.strip("()[]. ")
    if letters.isascii() and letters.isalpha() and len(letters) <= 10 and len(set(letters)) == len(letters):
        return [ord(c.upper()) - ord("A") for c in letters]
    position = label_index(token)  # a label of another script: "ب", "③", "イ", "Ｃ"
    if position is not None:
        return [position]
    raise MappingError("invalid_answer", f"{item!r} is not a letter answer")


def _single_answer(value: Any, style: str, options: int, ids: list[str]) -> int | None:
    """The option named by the usual answer, "C", "(c)", ["b"] (letter) or an option's id,
    exactly as RecordMapper._answer's general path decides it but without splitting the answer
    into tokens; None for any other answer (the general path decides it, errors included)."""
    one = value[0] if isinstance(value, list) and len(value) == 1 else value
    if not isinstance(one, str):
        return None
    if style == "letter" and len(one) <= 3 and " " not in one:
        letter = one.strip("()[].")
        if len(letter) == 1 and letter.isascii() and letter.isalpha():
            index = ord(letter.upper()) - ord("A")
            return index if index < options else None
    elif style == "id" and one is value and one in ids and one.strip(" ,;"):
        return ids.index(one) if one.strip().lower() not in _NO_ANSWER else None
    return None


def canonical_language(code: str) -> str:
    parts = code.replace("_", "-").split("-")
    out = [parts[0].lower()]
    for p in parts[1:]:
        out.append(p.upper() if len(p) == 2 else p.title() if len(p) == 4 else p.lower())
    return "-".join(out)


def canonical_split(name: str) -> str:
    name = name.strip().lower()
    return SPLITS.get(name, name)


@dataclass(slots=True)
class FileContext:
    """What is known about a file before reading its records (path-derived values)."""

    rel_path: str
    language: str | None
    split: str | None


class RecordMapper:
    def __init__(self, source: SourceBase) -> None:
        self.source = source
        self.spec: MappingSpec = source.resolved_mapping()
        assert source.language is not None  # enforced by config validation
        self.language_spec: ValueSpec = source.language
        self.split_spec: ValueSpec = source.split
        # Decided once, not per record: each field's lookup, and what every entry shares.
        spec = self.spec
        self._get = {name: field_getter(getattr(spec, name)) for name in _TEXT_FIELDS}
        for name, sub in (("options", spec.options), ("answer", spec.answer), ("label", spec.label)):
            self._get[name] = field_getter(sub.field if sub is not None else None)
        if spec.options is not None and spec.options.fields is not None:
            self._option_columns = [field_getter(f) for f in spec.options.fields]
        self._plain = {name: plain_name(getattr(spec, name)) for name in _TEXT_FIELDS}
        for name, sub in (("options", spec.options), ("answer", spec.answer), ("label", spec.label)):
            self._plain[name] = plain_name(sub.field) if sub is not None else None
        if spec.label is not None:  # a raw label, casefolded -> the label it names
            label = spec.label
            defaults = {x: x for x in label.labels} if label.labels else _DEFAULT_LABELS.get(spec.task, {})
            self._label_values = {k.casefold(): v for k, v in (label.values or defaults).items()}
        self._metadata_getters = [(k, field_getter(ref)) for k, ref in spec.metadata.items()]
        self._key_parts = [(p, field_getter(_key_field(p))) for p in spec.key or ()]
        self._template: dict[str, Any] = {
            **dict.fromkeys(_TASK_FIELDS),
            "source": source.name,
            "task": spec.task,
            "origin": source.origin,
            "license": source.license,
        }
        self._languages: dict[str, str] = {}  # a record's language -> its canonical code

    # -- per file -------------------------------------------------------------------
    def file_context(self, rel_path: str) -> FileContext:
        return FileContext(
            rel_path=rel_path,
            language=self.path_value(self.language_spec, rel_path),
            split=self.path_value(self.split_spec, rel_path),
        )

    @staticmethod
    def path_value(spec: ValueSpec, rel_path: str) -> str | None:
        """A value known from the file alone (a constant, a path group); None: per record."""
        if spec.value is not None:
            return spec.map.get(spec.value, spec.value)
        if spec.pattern is not None:
            m = re.search(spec.pattern, rel_path)
            if m:
                return spec.map.get(m.group(1), m.group(1))
            return spec.default
        return None  # field-based: per record

    @staticmethod
    def record_value(spec: ValueSpec, pre: str | None, record: dict, extra: dict) -> str | None:
        """The value for one record: `pre` (path_value's) or the record's field, mapped."""
        if pre is not None or spec.field is None:
            return pre if pre is not None else spec.default
        value = get_field(record, spec.field, extra)
        if value is None or value == "":
            return spec.default
        value = str(value)
        return spec.map.get(value, value)

    # -- per record -----------------------------------------------------------------
    def record_key(self, record: dict[str, Any], extra: dict[str, Any], raw_text: str | None) -> str:
        if not self.spec.key:
            body = raw_text if raw_text is not None else canonical_json(record)
            return "h:" + stable_hash("raw", body)
        parts = []
        for part, get in self._key_parts:
            value = key_text(get(record, extra), part)
            if value is None:
                raise MappingError("missing_key", f"key field '{_key_name(part)}' is absent")
            parts.append(value)
        return ":".join(parts)

    def parent_key(self, record: dict[str, Any], extra: dict[str, Any]) -> str | None:
        link = self.source.translation_of
        if link is None:
            return None
        parts = [key_value(record, k, extra) for k in link.key]
        if any(p is None for p in parts):
            named = [_key_name(k) for k in link.key]
            raise MappingError(
                "missing_key", f"parent key field(s) {named} absent: cannot link the translation"
            )
        return entry_id(link.source, ":".join(str(p) for p in parts))

    def map(
        self, record: dict[str, Any], extra: dict[str, Any], ctx: FileContext, key: str
    ) -> dict[str, Any]:
        """One record's entry, or the MappingError that says why it has none."""
        cols = self.map_batch([record], [extra], ctx, [key])
        if cols.errors:
            raise cols.errors[0]
        return {name: cols.columns[name][0] for name in ENTRY_COLUMNS}

    def map_batch(
        self, records: list[dict[str, Any]], extras: list[dict[str, Any]], ctx: FileContext, keys: list[str]
    ) -> Columns:
        """A batch's entries as columns (ENTRY_COLUMNS), made field by field in the order below:
        a record's error is the first of its fields to fail, as when it is mapped alone, and is
        kept in `errors` by its place in the batch."""
        spec = self.spec
        cols = Columns(records, extras)
        cols.columns["record_key"] = list(keys)
        for name, value in self._template.items():
            cols.constant(name, value)
        self._value_column(
            cols, "language", self.language_spec, lambda r, x: self._language(r, x, ctx), ctx.language
        )
        self._value_column(cols, "split", self.split_spec, lambda r, x: self._split(r, x, ctx), ctx.split)
        cols.columns["entry_id"] = entry_ids(self.source.name, cols.columns["record_key"])
        self._optional_column(cols, "rationale")
        if self.source.translation_of is None:
            cols.constant("parent_entry_id", None)
        else:
            self._rule_column(cols, "parent_entry_id", self.parent_key)
        if self._metadata_getters:
            self._rule_column(cols, "metadata", self._metadata)
        else:
            cols.constant("metadata", None)
        if spec.task == "mcqa":
            self._required_column(cols, "question")
            self._optional_column(cols, "context")
            assert spec.options is not None and spec.answer is not None
            self._options_columns(cols, spec.options)
            answer = spec.answer
            cols.add(
                "answer_indices",
                lambda: self._answers(cols, answer),
                lambda i: self._answer(cols.records[i], answer, *self._options_of(cols, i), cols.extras[i]),
            )
        elif spec.task == "yes_no":
            self._required_column(cols, "question")
            self._optional_column(cols, "context")
            self._label_column(cols, YES_NO_LABELS)
        elif spec.task == "nli":
            self._required_column(cols, "premise")
            self._required_column(cols, "hypothesis")
            self._label_column(cols, NLI_LABELS)
        elif spec.task == "classification":
            # The label set travels as the entry's options (shown as lettered choices by the
            # benchmark and training prompts), the label as its text and its index.
            self._required_column(cols, "question")
            self._optional_column(cols, "context")
            assert spec.label is not None and spec.label.labels is not None
            labels = tuple(spec.label.labels)
            self._label_column(cols, labels)
            cols.columns["options"] = [list(labels) for _ in range(len(cols))]
            cols.columns["answer_indices"] = [[labels.index(label)] for label in cols.columns["label"]]
        else:
            self._required_column(cols, "question")
            self._required_column(cols, "answer_text", column="answer", name="answer")
        cols.columns["content_hash"] = content_hashes(cols.columns)
        return cols

    # -- columns ----------------------------------------------------------------------
    def _language(self, record: dict | None, extra: dict | None, ctx: FileContext) -> str:
        language = self.record_value(self.language_spec, ctx.language, record or {}, extra or {})
        if not language:
            raise MappingError("missing_language", "no language from the source spec or record")
        return self._canonical_language(language)

    def _split(self, record: dict | None, extra: dict | None, ctx: FileContext) -> str:
        split = self.record_value(self.split_spec, ctx.split, record or {}, extra or {})
        return canonical_split(split or "train")

    def _value_column(
        self,
        cols: Columns,
        name: str,
        spec: ValueSpec,
        rule: Callable[[dict | None, dict | None], str],
        pre: str | None,
    ) -> None:
        """The language or the split: one value for the whole file when the path or a constant
        gives it (`pre`, or a spec without a field), else the record's field."""
        if pre is not None or spec.field is None:
            cols.add(name, lambda: [rule(None, None)] * len(cols), lambda i: rule(None, None))
        else:
            self._rule_column(cols, name, rule)

    def _rule_column(self, cols: Columns, name: str, rule: Callable[[dict, dict], Any]) -> None:
        cols.add(
            name,
            lambda: [rule(r, x) for r, x in zip(cols.records, cols.extras, strict=True)],
            lambda i: rule(cols.records[i], cols.extras[i]),
        )

    def _values(self, cols: Columns, field: str) -> list[Any]:
        name = self._plain.get(field)
        if name is not None:
            return [r.get(name) for r in cols.records]
        get = self._get[field]
        return [get(r, x) for r, x in zip(cols.records, cols.extras, strict=True)]

    def _optional_column(self, cols: Columns, field: str) -> None:
        cols.add(
            field,
            lambda: [t or None for t in _texts(self._values(cols, field))],
            lambda i: self._optional_text(cols.records[i], field, cols.extras[i]),
        )

    def _required_column(
        self, cols: Columns, field: str, column: str | None = None, name: str | None = None
    ) -> None:
        def texts() -> list[Any]:
            # an absent or empty text: the rule says which field is missing
            return [t or UNDECIDED for t in _texts(self._values(cols, field))]

        def rule(i: int) -> str:
            return self._required_text(cols.records[i], field, cols.extras[i], name)

        cols.add(column or field, texts, rule)

    def _options_columns(self, cols: Columns, spec: OptionsSpec) -> None:
        """`options` and `_option_ids` (what an answer may name); inline options also cut the
        question to its stem."""
        if spec.style == "inline":
            made = cols.add(
                "_options",
                lambda: [self._inline_options(q, spec) for q in cols.columns["question"]],
                lambda i: self._inline_options(cols.columns["question"][i], spec),
            )
            cols.columns["question"] = [stem for stem, _, _ in made]
            cols.columns["options"] = [texts for _, texts, _ in made]
            cols.columns["_option_ids"] = [ids for _, _, ids in made]
        else:
            pairs = cols.add(
                "_options",
                lambda: self._structured_options(cols, spec),
                lambda i: self._options(cols.records[i], spec, cols.extras[i]),
            )
            cols.columns["options"] = [texts for texts, _ in pairs]
            cols.columns["_option_ids"] = [ids for _, ids in pairs]
        del cols.columns["_options"]

    def _structured_options(self, cols: Columns, spec: OptionsSpec) -> list[tuple[list[str], list[str]]]:
        """`_options` for a batch whose options are all already structured: a list (style
        list), a list of objects (objects), an object of letters (letter_dict), or text of
        "(A) ..." lines (text). Their texts are cleaned in one pass; any other shape is left to
        the rule."""
        values = self._values(cols, "options")
        if spec.style == "text" and not spec.labels and all(type(v) is str for v in values):
            # A record with fewer than two "(A)" lines (labels of another script, or none) has
            # too few texts below: it is then the rule's, which tries other labels.
            split = [split_labelled_options(v) for v in values]
            ids = [[label for label, _ in pairs] for pairs in split]
            raw = [[text for _, text in pairs] for pairs in split]
        elif spec.style == "list" and all(type(v) is list and len(v) <= len(_LETTERS) for v in values):
            ids = [_LETTERS[: len(v)] for v in values]
            raw = values
        elif spec.style == "objects" and all(
            type(v) is list and all(type(o) is dict for o in v) for v in values
        ):
            id_field, text_field = spec.id_field, spec.text_field
            ids = [[str(o.get(id_field)) for o in v] for v in values]
            raw = [[o.get(text_field) for o in v] for v in values]
        elif spec.style == "letter_dict" and all(type(v) is dict for v in values):
            keys = [sorted(v, key=_lower_text) for v in values]
            ids = [[str(k).upper() for k in ks] for v, ks in zip(values, keys, strict=True)]
            raw = [[v[k] for k in ks] for v, ks in zip(values, keys, strict=True)]
        else:  # a shape of its own somewhere in the batch: every record is the rule's
            return [UNDECIDED] * len(values)
        texts = [[t or "" for t in _texts(options)] for options in raw]
        if spec.style == "list":
            texts = [strip_option_labels(t) for t in texts]
        # missing or too few options: the rule says which
        return [
            (options, i) if sum(1 for t in options if t) >= 2 else UNDECIDED
            for options, i in zip(texts, ids, strict=True)
        ]

    def _answers(self, cols: Columns, spec: AnswerSpec) -> list[list[int]]:
        """`_answer` for a batch: the usual answer ("C", ["b"], an option's id) decided inline by
        _single_answer, any other by the rule."""
        style = spec.style
        c = cols.columns
        return [
            [i] if (i := _single_answer(value, style, len(options), ids)) is not None else UNDECIDED
            for value, options, ids in zip(
                self._values(cols, "answer"), c["options"], c["_option_ids"], strict=True
            )
        ]

    @staticmethod
    def _options_of(cols: Columns, i: int) -> tuple[list[str], list[str]]:
        return cols.columns["options"][i], cols.columns["_option_ids"][i]

    def _label_column(self, cols: Columns, allowed: tuple[str, ...]) -> None:
        spec = self.spec.label
        assert spec is not None

        def rule(record: dict, extra: dict) -> str:
            return self._label(record, spec, extra, allowed)

        if spec.choices_field:
            self._rule_column(cols, "label", rule)
            return
        lookup = self._label_values

        def labels() -> list[str]:
            # A label of printable ASCII (clean_text only strips it) is looked up inline.
            values = self._values(cols, "label")
            return [
                label
                if type(v) is str and v and v.isascii() and v.isprintable() and "&" not in v
                and "  " not in v and (label := lookup.get(v.strip().casefold())) in allowed
                else UNDECIDED
                for v in values
            ]  # fmt: skip

        cols.add("label", labels, lambda i: rule(cols.records[i], cols.extras[i]))

    def _canonical_language(self, language: str) -> str:
        """The code checked and written canonically once per distinct value, not per record."""
        code = self._languages.get(language)
        if code is None:
            if not _LANG.match(language):
                raise MappingError("invalid_language", f"'{language}' is not a language code")
            code = self._languages[language] = canonical_language(language)
        return code

    # -- fields ---------------------------------------------------------------------
    def _optional_text(self, record: dict, field: str, extra: dict) -> str | None:
        text = _text(self._get[field](record, extra))
        return text or None

    def _required_text(self, record: dict, field: str, extra: dict, name: str | None = None) -> str:
        text = self._optional_text(record, field, extra)
        if not text:
            ref = getattr(self.spec, field)
            raise MappingError("missing_field", f"'{name or field}' (from {ref}) is absent or empty")
        return text

    def _metadata(self, record: dict, extra: dict) -> str | None:
        if not self._metadata_getters:
            return None
        meta = {k: v for k, get in self._metadata_getters if (v := get(record, extra)) not in _EMPTY}
        return canonical_json(meta) if meta else None

    def _options(self, record: dict, spec: OptionsSpec, extra: dict) -> tuple[list[str], list[str]]:
        """Returns the option texts and, per option, the id an answer may refer to."""
        if spec.style == "columns":
            raw = [get(record, extra) for get in self._option_columns]
            pairs = [(chr(ord("A") + i), v) for i, v in enumerate(raw) if v not in (None, "")]
        else:
            value = self._get["options"](record, extra)
            if value in _EMPTY:
                raise MappingError("missing_options", f"no options in '{spec.field}'")
            pairs = self._option_pairs(value, spec)
        texts = [clean_text(v) if type(v) is str else (_text(v) or "") for _, v in pairs]
        if spec.style in ("list", "columns"):
            texts = strip_option_labels(texts)
        if sum(1 for t in texts if t) < 2:
            raise MappingError("too_few_options", f"{sum(1 for t in texts if t)} non-empty option(s)")
        return texts, [str(i) for i, _ in pairs]

    @staticmethod
    def _inline_options(question: str, spec: OptionsSpec) -> tuple[str, list[str], list[str]]:
        """The stem and the options of a question that carries its options in its text."""
        found = split_options(question, tuple(spec.labels) if spec.labels else None)
        if found is None:
            raise MappingError(
                "unparseable_options", "no run of labelled options (A. / أ- / ① ...) in the question"
            )
        stem, pairs = found
        if not stem:
            raise MappingError("missing_field", "the question has options but no stem before them")
        texts = [clean_text(t) for _, t in pairs]
        if sum(1 for t in texts if t) < 2:
            raise MappingError("too_few_options", f"{sum(1 for t in texts if t)} non-empty option(s)")
        return stem, texts, [label for label, _ in pairs]

    @staticmethod
    def _option_pairs(value: Any, spec: OptionsSpec) -> list[tuple[str, Any]]:
        if spec.style == "text":
            if not isinstance(value, str):
                raise MappingError("unparseable_options", "expected option text like '(A) ...'")
            pairs = [] if spec.labels else split_labelled_options(value)
            if len(pairs) < 2:  # "(A) ..." lines first, as always; then labels of any script
                found = split_options(value, tuple(spec.labels) if spec.labels else None)
                pairs = found[1] if found else pairs
            return pairs
        value = _structured(value)
        if spec.style in ("list", "letter_dict") and isinstance(value, dict):
            # Options keyed by letter ({"A": ..., "B": ...}): the same options in either style.
            return [(str(k).upper(), value[k]) for k in sorted(value, key=_lower_text)]
        if spec.style == "list" and isinstance(value, list):
            return [(chr(ord("A") + i), v) for i, v in enumerate(value)]
        if spec.style == "objects" and isinstance(value, list) and all(isinstance(o, dict) for o in value):
            return [(str(o.get(spec.id_field)), o.get(spec.text_field)) for o in value]
        wanted = {"list": "a list", "letter_dict": "an object of letters", "objects": "a list of objects"}
        raise MappingError("unparseable_options", f"expected {wanted[spec.style]}, got {_shape(value)}")

    def _answer(
        self, record: dict, spec: AnswerSpec, options: list[str], ids: list[str], extra: dict
    ) -> list[int]:
        value = self._get["answer"](record, extra)
        single = _single_answer(value, spec.style, len(options), ids)
        if single is not None:
            return [single]
        items = [
            v
            for v in (value if isinstance(value, list) else [value])
            if v is not None and str(v).strip(" ,;") != ""
        ]
        if not items or all(str(v).strip().lower() in _NO_ANSWER for v in items):
            raise MappingError("missing_answer", f"no answer in '{spec.field}' (got {value!r})")
        indices: set[int] = set()
        for item in items:
            indices.update(self._answer_item(item, spec, options, ids))
        bad = sorted(i for i in indices if not 0 <= i < len(options))
        if bad:
            raise MappingError(
                "answer_out_of_range", f"answer {value!r} names option(s) beyond the {len(options)} given"
            )
        return sorted(indices)

    @staticmethod
    def _answer_item(item: Any, spec: AnswerSpec, options: list[str], ids: list[str]) -> list[int]:
        if spec.style == "letter":
            tokens = [t for t in _LETTER_TOKENS.split(str(item).strip()) if t]
            return [i for tok in tokens for i in _letter_indices(tok, item)]
        if spec.style == "index":
            try:
                return [int(item) - spec.index_base]
            except (TypeError, ValueError):
                raise MappingError("invalid_answer", f"{item!r} is not an option index") from None
        if spec.style == "id":
            try:
                return [ids.index(str(item))]
            except ValueError:
                raise MappingError("answer_out_of_range", f"no option has id {item!r}") from None
        text = clean_text(str(item)).casefold()
        for i, option in enumerate(options):
            if option.casefold() == text:
                return [i]
        raise MappingError("answer_out_of_range", f"answer text {str(item)[:80]!r} is not among the options")

    def _label(self, record: dict, spec: LabelSpec, extra: dict, allowed: tuple[str, ...]) -> str:
        value = self._get["label"](record, extra)
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if value is None or value == "":
            raise MappingError("missing_answer", f"no label in '{spec.field}'")
        raw = str(value)
        if spec.choices_field:
            choices = get_field(record, spec.choices_field, extra)
            letter = raw.strip("() .").upper()
            if not isinstance(choices, list) or len(letter) != 1 or not letter.isalpha():
                raise MappingError("invalid_label", f"{raw!r} does not pick one of '{spec.choices_field}'")
            idx = ord(letter) - ord("A")
            if not 0 <= idx < len(choices):
                raise MappingError("answer_out_of_range", f"{raw!r} is beyond {len(choices)} choices")
            raw = str(choices[idx])
        label = self._label_values.get(clean_text(raw).casefold())
        if label not in allowed:
            raise MappingError("invalid_label", f"{raw!r} is not one of {', '.join(allowed)}")
        return label
