"""The real datasets in ../shared/data, collected through configs/shared-real.yaml alone."""

from pathlib import Path

import pytest

from globmed_data.config import load_config
from globmed_data.warehouse import Warehouse
from tests.helpers import ROOT, collect_all, needs_shared

pytestmark = [needs_shared, pytest.mark.shared_data]


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Warehouse:
    loaded = load_config(ROOT / "configs" / "shared-real.yaml")
    wh = Warehouse(Path(tmp_path_factory.mktemp("shared")) / "wh.duckdb")
    wh.reports = collect_all(wh, loaded)  # type: ignore[attr-defined]
    wh.loaded = loaded  # type: ignore[attr-defined]
    yield wh
    wh.close()


def test_every_source_collects(shared) -> None:
    added = {name: r.added for name, r in shared.reports.items()}
    assert all(r.status == "collected" for r in shared.reports.values())
    assert added == {
        "frenchmedmcqa": 3104,
        "head_qa_es": 6765,
        "head_qa_en": 6765,
        "igakuqa": 1986,
        "igakuqa_en": 1987,
        "medllm_en": 7818,
        "pubmedqa_en": 500,
        "medllm_ja": 2685,
        "jjsimqa_ja": 460,
        "medllm_zh": 13662,
        "apollo_xmedbench": 14404,
        "rumed_danet": 1564,
        "rumed_nli": 2817,
    }
    by_task = dict(shared.query("SELECT task, count(*) FROM entries GROUP BY 1"))
    assert by_task == {"mcqa": 59636, "yes_no": 2064, "nli": 2817}


def test_quarantine_reasons_are_specific(shared) -> None:
    reasons = dict(shared.query("SELECT reason, count(*) FROM quarantine GROUP BY 1"))
    assert reasons == {
        "duplicate_record": 709,
        "duplicate_key": 1,
        "missing_options": 42,
        "too_few_options": 2,
        "invalid_answer": 3,
        "missing_answer": 15,
        "answer_out_of_range": 1,
    }
    # IgakuQA's free-numeric questions have no choices; DenQA marks unknown answers "NA".
    assert shared.query(
        "SELECT count(*) FROM quarantine WHERE source = 'igakuqa' AND reason = 'missing_options'"
    ) == [(12,)]
    assert shared.query(
        "SELECT count(*) FROM quarantine WHERE reason = 'missing_answer' AND payload LIKE "
        '\'%"answer": "NA"%\''
    ) == [(15,)]


def test_misspelt_answer_key_is_read(shared) -> None:
    # 116-A_translate.jsonl spells `answer` as `asnwer`: the preset lists both.
    rows = shared.query(
        "SELECT count(*) FROM entries WHERE source = 'igakuqa_en' AND record_key LIKE '116A%'"
    )
    assert rows[0][0] >= 74


def test_translations_link_to_existing_parents(shared) -> None:
    orphans = shared.query(
        "SELECT c.source, count(*) FROM entries c LEFT JOIN entries p ON c.parent_entry_id = p.entry_id "
        "WHERE c.origin = 'translated' AND p.entry_id IS NULL GROUP BY 1"
    )
    # One English IgakuQA item whose Japanese parent record was quarantined.
    assert dict(orphans) == {"igakuqa_en": 1}
    linked = shared.query(
        "SELECT p.language, count(*) FROM entries c "
        "JOIN entries p ON c.parent_entry_id = p.entry_id GROUP BY 1"
    )
    assert dict(linked) == {"es": 6765, "ja": 1986}


def test_multi_answer_and_languages(shared) -> None:
    multi = shared.query(
        "SELECT count(*) FROM entries WHERE len(answer_indices) > 1 AND source = 'frenchmedmcqa'"
    )
    assert multi[0][0] > 1000  # FrenchMedMCQA is mostly multi-answer
    langs = {lang for (lang,) in shared.query("SELECT DISTINCT language FROM entries")}
    assert langs == {"ar", "en", "es", "fr", "hi", "ja", "ru", "zh"}


def test_no_change_rerun_skips_everything(shared) -> None:
    again = collect_all(shared, shared.loaded)
    assert {r.status for r in again.values()} == {"skipped"}


@pytest.fixture(scope="module")
def curated(shared) -> Warehouse:
    from globmed_data.langid.stage import run_langid
    from globmed_data.quality.stage import run_quality

    run_langid(shared, shared.loaded, "curate")
    run_quality(shared, shared.loaded, "curate")
    return shared


def test_language_id_agrees_on_real_exams_and_flags_only_english_in_japanese_sets(curated) -> None:
    decisions = dict(curated.query("SELECT decision, count(*) FROM v_langid GROUP BY 1"))
    assert decisions["agree"] / sum(decisions.values()) > 0.998
    flagged = curated.query(
        "SELECT DISTINCT declared_language, detected_language FROM v_langid WHERE decision = 'flag'"
    )
    # English-language questions inside the Japanese exam sets, and an IgakuQA EN item whose
    # options were left in Japanese.
    assert sorted(flagged) == [("en", "ja"), ("ja", "en")]


def test_quality_rules_are_honest_on_real_exams(curated) -> None:
    rates = dict(curated.query("SELECT source, avg(passed::INT) FROM v_quality GROUP BY 1"))
    # The Japanese exams need their image booklet for about a quarter of their questions.
    booklet_sets = {"igakuqa", "igakuqa_en", "medllm_ja"}
    assert min(r for s, r in rates.items() if s not in booklet_sets) > 0.85
    assert rates["frenchmedmcqa"] > 0.999 and rates["rumed_nli"] == 1
    # IgakuQA marks those questions itself (text_only = false): the rule finds them, and only them.
    needs, caught, wrong = curated.query(
        "SELECT count(*) FILTER (WHERE json_extract_string(e.metadata, '$.text_only') = 'false'), "
        "count(*) FILTER (WHERE json_extract_string(e.metadata, '$.text_only') = 'false' "
        "AND list_contains(q.reasons, 'missing_image')), "
        "count(*) FILTER (WHERE json_extract_string(e.metadata, '$.text_only') = 'true' "
        "AND list_contains(q.reasons, 'missing_image')) "
        "FROM entries e JOIN quality_results q USING (entry_id) WHERE e.source = 'igakuqa'"
    )[0]
    assert needs > 500 and caught / needs > 0.95 and wrong == 0
    rejected = dict(
        curated.query("SELECT reason, count(*) FROM v_quality_hits WHERE kind = 'reject' GROUP BY 1")
    )
    # Rules that once rejected valid exam questions (short stems, Chinese punctuation, long
    # vignettes, "ECG shows") must not fire on this data.
    assert {"too_short", "symbol_ratio", "repetitive"}.isdisjoint(rejected)
    assert rejected["missing_image"] > 400 and rejected["translation_artifact"] > 50
    booklet = curated.query(
        "SELECT count(*) FROM v_quality_hits h JOIN entries e USING (entry_id) "
        "WHERE h.reason = 'missing_image' AND e.question LIKE '%別冊%'"
    )[0][0]
    assert booklet > 250  # IgakuQA items whose images are in the absent booklet


def test_every_real_segment_survives_masking_and_every_number_is_protected(shared) -> None:
    import re

    import polars as pl

    from globmed_data.translate.segments import Protector, segments_of

    protector = Protector()
    frame = pl.from_arrow(shared.arrow("SELECT * FROM entries WHERE status = 'active'"))
    segments = protected = 0
    for entry in frame.iter_rows(named=True):
        for seg in segments_of(entry, protector):
            restored, problems = protector.restore(seg.masked, seg.spans)
            assert restored == seg.text and not problems, seg.text[:200]
            assert not re.search(r"\d", re.sub(r"\[\d+\]", "", seg.masked)), seg.masked[:200]
            segments += 1
            protected += bool(seg.spans)
    assert segments > 300_000 and protected > 0.15 * segments  # 60,436 of 339,051 when written


def test_real_data_exports_verifies_and_loads(curated, tmp_path) -> None:
    import datasets

    from globmed_data.dedup.stage import run_dedup
    from globmed_data.export.layout import verify_folder
    from globmed_data.export.stage import run_export

    run_dedup(curated, curated.loaded, "curate", log=lambda _m: None)
    first = run_export(curated, curated.loaded, "export", publish=False, log=lambda _m: None)
    assert first["entries"] == curated.query("SELECT count(*) FROM v_curated_entries")[0][0] > 40_000
    manifest = verify_folder(Path(first["folder"]))
    again = run_export(curated, curated.loaded, "export2", publish=False, log=lambda _m: None)
    assert (again["version"], again["created"]) == (first["version"], False)
    loaded_rows = 0
    for config in manifest["configs"]:
        # A cache of its own: datasets' shared cache keys a local folder by its path, and an
        # earlier run's export at the same temporary path would be read back instead.
        ds = datasets.load_dataset(first["folder"], config, cache_dir=str(tmp_path / "hf-cache"))
        loaded_rows += sum(ds[s].num_rows for s in ds)
    assert loaded_rows == first["entries"]


def test_compiled_normalisation_matches_the_unicode_definition_on_every_real_text(shared) -> None:
    import polars as pl

    from globmed_data.dedup.signing import normalised
    from tests.dedup.test_dedup import reference_normalised

    frame = pl.from_arrow(shared.arrow("SELECT question, options FROM entries WHERE status = 'active'"))
    texts = [*frame["question"].to_list(), *frame["options"].explode().to_list()]
    assert len(texts) > 300_000
    assert normalised(pl.Series(texts, dtype=pl.String)).to_list() == reference_normalised(texts)


def test_compiled_character_counts_match_the_regex_definitions_on_every_real_question(shared) -> None:
    from tests.kernels.test_text_metrics import assert_counts_match

    questions = shared.arrow("SELECT question FROM entries WHERE question IS NOT NULL").column(0).to_pylist()
    assert len(questions) > 60_000
    assert_counts_match(questions)


def test_compiled_langid_preparation_matches_the_regex_definition_on_every_real_entry(shared) -> None:
    import polars as pl

    from globmed_data.langid.identify import entry_text_expr, prepare_frame
    from tests.langid_reference import reference_prepare

    frame = pl.from_arrow(
        shared.arrow("SELECT task, question, premise, hypothesis, options, answer, context FROM entries")
    )
    texts = frame.select(entry_text_expr()).to_series()
    assert len(texts) > 60_000
    assert prepare_frame(texts, 120).equals(reference_prepare(texts, 120))


def test_compiled_fasttext_predicts_as_the_engine_on_every_real_entry(shared) -> None:
    import polars as pl

    from globmed_data.langid.fasttext_model import FastTextModel, _engine, default_model_path
    from globmed_data.langid.identify import entry_text_expr, prepare_frame

    frame = pl.from_arrow(
        shared.arrow("SELECT task, question, premise, hypothesis, options, answer, context FROM entries")
    )
    texts = prepare_frame(frame.select(entry_text_expr()).to_series(), 120)["clean"]
    assert len(texts) > 60_000
    model = FastTextModel(default_model_path())
    ids, probs, counts = model.top_k(texts, 3, threads=2)
    engine = _engine(default_model_path()).f
    for i, text in enumerate(texts):
        want = [
            (p, label.removeprefix("__label__")) for p, label in engine.predict(f"{text}\n", 3, 0.0, "strict")
        ]
        got = [(float(probs[i, j]), model.label_list[ids[i, j]]) for j in range(counts[i])]
        assert got == want, text  # same labels, same float32 probabilities
