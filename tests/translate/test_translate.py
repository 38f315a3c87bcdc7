"""Translation: protected spans, per-segment structure, checks, cache, fallback, review, eval,
and the real backends (transformers with tiny local models, an OpenAI-compatible server process
on loopback) that can run here. No real MT model can be downloaded, so the stage's happy path is
driven by a named test double backend that writes real Swahili sentences."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import yaml

from globmed_data.config import load_config, parse_config
from globmed_data.langid.identify import LanguageIdentifier
from globmed_data.langid.stage import run_langid
from globmed_data.quality.stage import run_quality
from globmed_data.settings import ConfigError
from globmed_data.translate.backends import OpenAIBackend
from globmed_data.translate.checks import OutputChecker
from globmed_data.translate.evaluate import evaluate
from globmed_data.translate.parallel import ConfiguredCorpus, TicoCorpus
from globmed_data.translate.review import export_sample, import_verdicts
from globmed_data.translate.segments import Protector, segments_of
from globmed_data.translate.settings import OpenAIBackendSettings, TranslateSettings, TranslationChecks
from globmed_data.translate.stage import Translator, run_translate
from globmed_data.warehouse import Warehouse
from tests.helpers import collect_all, free_port, needs_ray, wait_until_up, write_config

quiet = lambda _m: None  # noqa: E731
SWAHILI = [
    "Mgonjwa anapaswa kunywa dawa hii mara mbili kwa siku baada ya kula chakula.",
    "Daktari alimchunguza mtoto huyo na kugundua kwamba ana homa kali sana.",
    "Ni muhimu kunawa mikono kwa sabuni na maji safi kabla ya kula.",
    "Wagonjwa wengi hufika hospitalini wakiwa na maumivu ya kichwa na kikohozi.",
    "Mama mjamzito anashauriwa kuhudhuria kliniki angalau mara nne wakati wa ujauzito.",
    "Chanjo hii inalinda watoto dhidi ya magonjwa hatari ya kuambukiza.",
    "Dalili za ugonjwa huu ni pamoja na uchovu, kupungua uzito na kiu ya mara kwa mara.",
    "Muuguzi alipima shinikizo la damu la mgonjwa na kuandika matokeo kwenye faili.",
]


class SwahiliDouble:
    """TEST DOUBLE for a translation model: answers with real Swahili sentences of about the
    input's length, keeping every [n] placeholder (or dropping them, to test rejection)."""

    def __init__(self, name: str = "double", *, drop_placeholders: bool = False) -> None:
        self.name, self.model, self.batch_size = name, f"{name}-model", 64
        self.drop = drop_placeholders
        self.calls: list[int] = []

    def translate(self, texts: Sequence[str], src: str, tgt: str) -> list[str | None]:
        import re

        self.calls.append(len(texts))
        out = []
        for text in texts:
            marks = [] if self.drop else re.findall(r"\[\d+\]", text)
            pool = " ".join(SWAHILI[sum(map(ord, text)) % len(SWAHILI) :] + SWAHILI).split()
            words: list[str] = []
            while pool and len(" ".join(words)) < len(text):
                words.append(pool.pop(0))
            out.append(" ".join([*marks, *words]))  # about the input's length, in Swahili
        return out


def _item(key: str, question: str, options: list[str]) -> dict:
    return {"id": key, "question": question, "options": options, "answer": "B", "lang": "en"}


QUESTIONS = [
    _item(
        "q1",
        "A 45-year-old man weighing 80 kg needs amoxicillin for pneumonia. What is the usual oral dose?",
        ["250 mg every 8 h", "500 mg every 8 h", "2 g once a week", "10 mg every day"],
    ),
    _item(
        "q2",
        "Which electrolyte disturbance is the most common cause of peaked T waves on the ECG?",
        ["Hyperkalaemia caused by kidney failure", "Hypokalaemia", "Hypercalcaemia", "Hyponatraemia"],
    ),
    _item(
        "q3",
        "What is the first-line treatment for uncomplicated hypertension in an adult of 50 years?",
        ["A thiazide diuretic taken daily", "Bed rest", "Surgery", "No treatment at all"],
    ),
]


@pytest.fixture
def translating(tmp_path: Path) -> Iterator[tuple[Warehouse, object]]:
    (tmp_path / "items.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    config = write_config(
        tmp_path,
        [
            {
                "name": "exam",
                "paths": ["items.jsonl"],
                "language": {"field": "lang"},
                "split": "train",
                "mapping": {
                    "task": "mcqa",
                    "key": "id",
                    "question": "question",
                    "options": {"style": "list", "field": "options"},
                    "answer": {"style": "letter", "field": "answer"},
                },
            }
        ],
        translate={
            "enabled": True,
            "protect_terms": ["amoxicillin"],
            "backends": {
                "double": {"kind": "hf", "model": "unused"},
                "broken": {"kind": "hf", "model": "unused"},
            },
            "jobs": [
                {"name": "low-resource", "targets": ["sw"], "from_languages": ["en"], "backend": "double"}
            ],
        },
        dedup={"enabled": False},
    )
    loaded = load_config(config)
    with Warehouse(tmp_path / "wh.duckdb") as wh:
        collect_all(wh, loaded)
        run_langid(wh, loaded, "r", log=quiet)
        run_quality(wh, loaded, "r", log=quiet)
        yield wh, loaded


def test_protector_masks_numbers_codes_abbreviations_and_terms() -> None:
    p = Protector(["amoxicillin"])
    masked, spans = p.mask(
        "Give 500 mg Amoxicillin every 8 h if HbA1c is 7.5% and the ECG shows COVID-19 signs."
    )
    assert spans == ("500 mg", "Amoxicillin", "8 h", "HbA1c", "7.5%", "ECG", "COVID-19")
    assert masked == "Give [1] [2] every [3] if [4] is [5] and the [6] shows [7] signs."
    assert p.restore("Tumia [2] [1] kila [3]; [4] [5] [6] [7]", spans)[1] == []
    assert p.restore("Tumia [2] kila [3]", spans)[1] == ["protected_lost"]
    assert "protected_repeated" in p.restore("[1] [1] [2] [3] [4] [5] [6] [7]", spans)[1]
    assert "protected_invented" in p.restore("[1] [2] [3] [4] [5] [6] [7] [8]", spans)[1]
    assert p.mask("WHICH DRUG IS FIRST LINE?")[1] == ()  # a shouted sentence has no abbreviations


def test_an_entry_is_one_segment_per_field_and_option() -> None:
    entry = {
        "task": "mcqa",
        "question": "Dose?",
        "context": None,
        "options": ["500 mg", "Twice a day"],
        "rationale": "Because.",
    }
    segs = segments_of(entry, Protector())
    assert [(s.field, s.index) for s in segs] == [
        ("question", None),
        ("options", 0),
        ("options", 1),
        ("rationale", None),
    ]
    assert not segs[1].needs_model and segs[2].needs_model  # "500 mg" is copied, never translated


def test_checks_name_what_is_wrong() -> None:
    checker = OutputChecker(TranslationChecks(), LanguageIdentifier())
    p = Protector()
    entry = {
        "task": "mcqa",
        "question": "The patient should take this medicine twice a day after meals, 500 mg.",
        "context": None,
        "options": ["Yes, always with water", "No"],
        "rationale": None,
    }
    segs = segments_of(entry, p)

    def run(outputs: list[str | None]) -> list[str]:
        restored, problems = [], []
        for seg, out in zip(segs, outputs, strict=True):
            text, found = (None, []) if out is None else p.restore(out, seg.spans)
            restored.append(text)
            problems.append(found)
        return checker.check(segs, restored, problems, "sw")

    good = [SWAHILI[0] + " [1]", "Ndiyo, kila mara pamoja na maji", "Hapana"]
    assert run(good) == []
    assert run([SWAHILI[0], *good[1:]]) == ["protected_lost(question)"]
    assert run([segs[0].masked, *good[1:]]) == ["copy_of_source(question)"]
    assert run([None, *good[1:]]) == ["backend_error(question)"]
    assert run(["[1] " + "dawa dawa dawa dawa " * 10, *good[1:]]) == ["repetition(question)"]
    assert run(["[1] Ndiyo.", "Ndiyo", "La"])[0].startswith("length_ratio(")
    wrong = [
        "Le patient doit prendre ce médicament deux fois par jour après les repas, [1].",
        "Oui, toujours avec de l'eau",
        "Non",
    ]
    assert run(wrong) == ["wrong_language(fr)"]
    assert run([SWAHILI[0] + " [1] 12", *good[1:]]) == ["numbers_changed"]


def test_stage_writes_translated_entries_and_never_translates_twice(translating) -> None:
    wh, loaded = translating
    double = SwahiliDouble()
    counts = run_translate(wh, loaded, "t1", log=quiet, backends={"double": double})
    assert (counts["translated"], counts["rejected"]) == (3, 0), wh.query("SELECT reasons FROM translations")
    rows = wh.query_dicts(
        "SELECT t.*, p.options AS parent_options, p.answer_indices AS parent_answers FROM entries t "
        "JOIN entries p ON p.entry_id = t.parent_entry_id WHERE t.origin = 'translated' ORDER BY t.record_key"
    )
    assert [r["record_key"] for r in rows] == ["q1@sw", "q2@sw", "q3@sw"]
    for r in rows:
        assert r["language"] == "sw" and r["source"] == "exam.mt" and r["status"] == "active"
        assert len(r["options"]) == len(r["parent_options"]) and r["answer_indices"] == r["parent_answers"]
        meta = json.loads(r["metadata"])["translation"]
        assert (
            meta["backend"] == "double" and meta["model"] == "double-model" and meta["prompt_version"] == "v1"
        )
        assert meta["source_language"] == "en" and meta["translated_at"]
    q1 = rows[0]
    assert "amoxicillin" in q1["question"] and "80 kg" in q1["question"]  # protected spans restored
    assert q1["options"][0] == "250 mg every 8 h" or "250 mg" in q1["options"][0]
    sent = sum(double.calls)
    assert counts["model_segments"] == sent > 0

    again = run_translate(wh, loaded, "t2", log=quiet, backends={"double": double})
    assert (again["translated"], again["skipped"], sum(double.calls)) == (0, 3, sent)
    # The cache answers when the outcome is lost: no backend call for any segment.
    with wh.transaction() as con:
        con.execute("DELETE FROM translations")
    third = run_translate(wh, loaded, "t3", log=quiet, backends={"double": double})
    assert third["translated"] == 3 and third["cache_hit_rate"] == 1.0 and sum(double.calls) == sent


def test_failures_are_kept_with_reasons_and_retried_with_the_fallback(translating) -> None:
    wh, loaded = translating
    spec = loaded.config.translate.jobs[0].model_copy(update={"fallback": ["double"], "backend": "broken"})
    translate = loaded.config.translate.model_copy(update={"jobs": [spec]})
    loaded = loaded.model_copy(update={"config": loaded.config.model_copy(update={"translate": translate})})
    broken, double = SwahiliDouble("broken", drop_placeholders=True), SwahiliDouble()
    counts = run_translate(wh, loaded, "t1", log=quiet, backends={"broken": broken, "double": double})
    assert counts["translated"] == 3  # every entry had a placeholder the broken backend dropped
    rows = wh.query_dicts("SELECT * FROM translations ORDER BY parent_entry_id")
    assert {r["backend"] for r in rows} == {"double"}
    # Without the fallback, the failures are kept with their reasons and no entry is written.
    only_broken = translate.model_copy(update={"jobs": [spec.model_copy(update={"fallback": []})]})
    loaded = loaded.model_copy(update={"config": loaded.config.model_copy(update={"translate": only_broken})})
    with wh.transaction() as con:
        con.execute("DELETE FROM translations; DELETE FROM entries WHERE origin = 'translated'")
    counts = run_translate(wh, loaded, "t2", log=quiet, backends={"broken": broken})
    assert (counts["translated"], counts["rejected"]) == (0, 3)
    reasons = [r[0] for r in wh.query("SELECT reasons FROM translations")]
    assert all(any(x.startswith("broken:protected_lost") for x in rs) for rs in reasons)
    assert wh.query("SELECT count(*) FROM entries WHERE origin = 'translated'")[0][0] == 0


def test_an_edited_parent_is_translated_again(translating, tmp_path) -> None:
    wh, loaded = translating
    double = SwahiliDouble()
    run_translate(wh, loaded, "t1", log=quiet, backends={"double": double})
    edited = [dict(q) for q in QUESTIONS]
    edited[2]["question"] = edited[2]["question"].replace("50 years", "60 years")
    (tmp_path / "items.jsonl").write_text("".join(json.dumps(q) + "\n" for q in edited))
    collect_all(wh, loaded)
    counts = run_translate(wh, loaded, "t2", log=quiet, backends={"double": double})
    assert (counts["translated"], counts["skipped"]) == (1, 2)
    q3 = wh.query("SELECT question FROM entries WHERE record_key = 'q3@sw'")[0][0]
    assert q3.startswith("60 ") and "50" not in q3
    # Only the number changed: the masked segment is the same, so the cache answered.
    assert counts["model_segments"] == 0


def test_review_round_trip(translating, tmp_path) -> None:
    wh, loaded = translating
    run_translate(wh, loaded, "t1", log=quiet, backends={"double": SwahiliDouble()})
    out = tmp_path / "review.jsonl"
    assert export_sample(wh, out, ["sw"], 10) == {"sw": 3}
    items = [json.loads(line) for line in out.read_text().splitlines()]
    assert items[0]["source"]["options"] and items[0]["translation"]["options"]
    by_key = {
        wh.query("SELECT record_key FROM entries WHERE entry_id = ?", [i["entry_id"]])[0][0]: i for i in items
    }
    by_key["q1@sw"]["verdict"] = "accept"
    by_key["q2@sw"] |= {
        "verdict": "fix",
        "fixed": {"question": "Ni tatizo gani la elektroliti husababisha mawimbi ya T?"},
    }
    by_key["q3@sw"]["verdict"] = "reject"
    bad = dict(by_key["q1@sw"], verdict="fix", fixed={"options": ["only one"]})
    out.write_text("".join(json.dumps(i) + "\n" for i in [*by_key.values(), bad]))
    result = import_verdicts(wh, out)
    assert (result["accept"], result["fix"], result["reject"]) == (1, 1, 1)
    assert len(result["problems"]) == 1 and "list of 4 texts" in result["problems"][0]
    q2 = wh.query_dicts("SELECT * FROM entries WHERE record_key = 'q2@sw'")[0]
    assert (
        q2["question"].startswith("Ni tatizo")
        and json.loads(q2["metadata"])["translation"]["reviewed"] == "fixed"
    )
    assert wh.query("SELECT status FROM entries WHERE record_key = 'q3@sw'")[0][0] == "rejected"
    reviews = dict(
        wh.query("SELECT e.record_key, t.review FROM translations t JOIN entries e USING (entry_id)")
    )
    assert reviews == {"q1@sw": "accepted", "q2@sw": "fixed", "q3@sw": "rejected"}
    # Reviewed work is never overwritten by a later run.
    counts = run_translate(wh, loaded, "t2", log=quiet, backends={"double": SwahiliDouble()})
    assert counts["translated"] == 0
    assert wh.query("SELECT question FROM entries WHERE record_key = 'q2@sw'")[0][0].startswith("Ni tatizo")


def test_eval_scores_with_chrf_and_bleu(translating, tmp_path) -> None:
    wh, loaded = translating
    tico = tmp_path / "tico"
    tico.mkdir()
    words = ["one", "two", "three", "four", "five", "six", "seven", "eight"]
    pairs = [{"en": f"Sentence {w} about a fever.", "tgt": s} for w, s in zip(words, SWAHILI, strict=True)]
    (tico / "tico19_en-sw.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))

    class Oracle(SwahiliDouble):
        """TEST DOUBLE: answers with the reference, so the scores must be perfect."""

        def translate(self, texts: Sequence[str], src: str, tgt: str) -> list[str | None]:
            refs = {p["en"]: p["tgt"] for p in pairs}
            masked = {Protector().mask(k)[0]: v for k, v in refs.items()}
            return [masked[t] for t in texts]

    translator = Translator(wh, loaded, "eval", quiet, backends={"double": Oracle()})
    rows = evaluate(translator, "double", TicoCorpus(tico), ["sw"], 100, quiet)
    assert rows[0]["segments"] == 8 and rows[0]["chrf_pp"] == 100.0 and rows[0]["bleu"] == 100.0
    assert wh.query("SELECT count(*) FROM translation_evals")[0][0] == 1


def test_translate_config_is_checked() -> None:
    base = {"version": 1, "sources": [{"name": "s", "paths": ["x.jsonl"], "preset": "nli", "language": "en"}]}
    backend = {"b": {"kind": "openai", "base_url": "http://127.0.0.1:1/v1", "model": "m"}}
    cases = [
        ({"enabled": True}, "no jobs"),
        (
            {"backends": backend, "jobs": [{"name": "j", "targets": "sw", "backend": "nope"}]},
            "not in translate",
        ),
        ({"backends": {"b": {"kind": "tgi", "model": "m"}}}, "does not match any of the expected tags"),
        (
            {
                "backends": backend,
                "jobs": [{"name": "j", "targets": ["sw"], "backend": "b", "sources": ["x"]}],
            },
            "names source",
        ),
    ]
    for translate, message in cases:
        with pytest.raises(ConfigError, match=message):
            parse_config({**base, "translate": translate}, "t")


# -- the openai backend's retries (httpx test transport: a test double for a flaky server) ---------


def test_openai_backend_retries_rate_limits_and_server_errors_and_hides_the_key(monkeypatch) -> None:
    httpx = pytest.importorskip("httpx")
    seen: list[int] = []
    script = iter([429, 500, 200, 400])

    def handler(request):
        assert request.headers["authorization"] == "Bearer sk-secret-123"
        status = next(script)
        seen.append(status)
        if status == 200:
            return httpx.Response(200, json={"choices": [{"message": {"content": " Habari [1] "}}]})
        if status == 400:
            return httpx.Response(400, text="bad request for key sk-secret-123")
        return httpx.Response(status, headers={"retry-after": "0"})

    monkeypatch.setenv("GLOBMED_TEST_KEY", "sk-secret-123")
    settings = OpenAIBackendSettings(
        kind="openai",
        base_url="http://llm.test/v1",
        model="m",
        api_key_env="GLOBMED_TEST_KEY",
        concurrency=1,
        max_retries=3,
    )
    backend = OpenAIBackend("api", settings, transport=httpx.MockTransport(handler))
    assert backend.translate(["Hello [1]"], "en", "sw") == ["Habari [1]"]
    assert seen == [429, 500, 200]
    assert backend.translate(["Again"], "en", "sw") == [None]  # a 400 is not retried
    why = backend.last_errors[0]
    assert why.startswith("permanent: HTTP 400") and "sk-secret-123" not in why and "***" in why


# -- real backends that run here: transformers with tiny random models ---------------------------


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> Path:
    """A tiny random Llama (with a chat template) and a tiny random T5, built locally."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tests.tiny_models import build_tiny_models

    return build_tiny_models(
        tmp_path_factory.mktemp("tiny-models"), [q["question"] for q in QUESTIONS] + SWAHILI
    )


def _with_backend(loaded, backends: dict, job_backend: str):
    job = loaded.config.translate.jobs[0].model_copy(update={"backend": job_backend, "fallback": []})
    translate = loaded.config.translate.model_copy(update={"backends": backends, "jobs": [job]})
    return loaded.model_copy(update={"config": loaded.config.model_copy(update={"translate": translate})})


@pytest.mark.parametrize("kind", ["causal", "seq2seq"])
def test_hf_backend_runs_tiny_local_models_and_its_garbage_is_rejected(
    translating, tiny_models, kind
) -> None:
    from globmed_data.translate.settings import HFBackendSettings

    wh, loaded = translating
    settings = HFBackendSettings(kind="hf", model=str(tiny_models / kind), max_new_tokens=24, batch_size=8)
    loaded = _with_backend(loaded, {"tiny": settings}, "tiny")
    counts = run_translate(wh, loaded, "t1", log=quiet)
    assert counts["model_segments"] > 0 and counts["translated"] + counts["rejected"] == 3
    assert counts["rejected"] == 3  # a random model's output fails the checks, with reasons
    reasons = [x for (rs,) in wh.query("SELECT reasons FROM translations") for x in rs]
    assert reasons and all(r.startswith("tiny:") for r in reasons)
    cached = wh.query("SELECT count(*) FROM translation_cache WHERE backend = 'tiny' AND output IS NOT NULL")[
        0
    ][0]
    assert cached == counts["model_segments"]


@pytest.fixture(scope="session")
def openai_server(tiny_models) -> Iterator[str]:
    """`transformers serve`: a real OpenAI-compatible server process, with the tiny causal model."""
    exe = Path(sys.executable).with_name("transformers")
    if not exe.exists():
        pytest.skip("transformers CLI not installed")
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [str(exe), "serve", str(tiny_models / "causal"), "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url + "/health", proc, "transformers serve")
    yield url + "/v1"
    proc.terminate()
    proc.wait(timeout=20)


def test_openai_backend_against_a_real_server_process(translating, tiny_models, openai_server) -> None:
    wh, loaded = translating
    settings = OpenAIBackendSettings(
        kind="openai",
        base_url=openai_server,
        model=str(tiny_models / "causal"),
        max_tokens=16,
        concurrency=4,
        timeout_s=60,
    )
    backend = OpenAIBackend("server", settings)
    outputs = backend.translate(["The patient has a fever.", "Give [1] twice a day."], "en", "sw")
    assert (
        len(outputs) == 2 and all(isinstance(o, str) for o in outputs) and backend.last_errors == [None, None]
    )
    loaded = _with_backend(loaded, {"server": settings}, "server")
    counts = run_translate(wh, loaded, "t1", log=quiet)
    assert counts["model_segments"] > 0 and counts["rejected"] == 3
    again = run_translate(wh, loaded, "t2", log=quiet)
    assert again["model_segments"] == 0 and again["skipped"] == 3


@pytest.mark.slow
def test_vllm_backend_with_vllm_cpu(translating, tiny_models) -> None:
    """vLLM's offline engine in its own environment (GLOBMED_VLLM_PYTHON: its interpreter)."""
    from globmed_data.translate.backends import VLLMBackend
    from globmed_data.translate.settings import VLLMBackendSettings

    python = os.environ.get("GLOBMED_VLLM_PYTHON")
    if not python:
        pytest.skip("set GLOBMED_VLLM_PYTHON to the interpreter of an environment with vllm-cpu installed")
    settings = VLLMBackendSettings(
        kind="vllm",
        model=str(tiny_models / "causal"),
        python=python,
        max_tokens=16,
        engine={"max_model_len": 512, "dtype": "float32", "gpu_memory_utilization": 0.1},
        timeout_s=900,
    )
    outputs = VLLMBackend("vllm", settings).translate(["The patient has a fever.", "Give [1]."], "en", "sw")
    assert len(outputs) == 2 and all(isinstance(o, str) for o in outputs)
    wh, loaded = translating
    counts = run_translate(wh, _with_backend(loaded, {"vllm": settings}, "vllm"), "t1", log=quiet)
    assert counts["model_segments"] > 0 and counts["translated"] + counts["rejected"] == 3


def test_pipeline_flow_runs_translation_then_checks_the_new_entries(
    prefect_api, tiny_models, tmp_path
) -> None:
    from flows.pipeline import pipeline_flow
    from tests.export.test_export import _demo_copy

    config = _demo_copy(tmp_path, enabled=False)
    spec = yaml.safe_load(config.read_text())
    spec["translate"] = {
        "enabled": True,
        "backends": {"tiny": {"kind": "hf", "model": str(tiny_models / "causal"), "max_new_tokens": 8}},
        "jobs": [
            {
                "name": "demo",
                "targets": ["yo"],
                "from_languages": ["en"],
                "tasks": ["yes_no"],
                "max_per_target": 3,
                "backend": "tiny",
            }
        ],
    }
    config.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
    result = pipeline_flow(config_path=str(config), warehouse=str(tmp_path / "wh.duckdb"))
    assert result["status"] == "succeeded"
    t = result["stages"]["translate"]
    assert t["translated"] + t["rejected"] == 3 and t["model_segments"] > 0
    with Warehouse(tmp_path / "wh.duckdb", read_only=True) as wh:
        stages = [
            s for (s,) in wh.query("SELECT stage FROM run_stages WHERE source = '*' ORDER BY started_at")
        ]
        assert stages == [
            "langid",
            "quality",
            "translate",
            "langid:translated",
            "quality:translated",
            "dedup",
        ]
        assert wh.query("SELECT count(*) FROM v_translations")[0][0] == 3


class FlakyDouble(SwahiliDouble):
    """TEST DOUBLE: a backend whose first call fails for every segment (a server that is down)."""

    def __init__(self) -> None:
        super().__init__("double")
        self.down = True

    def translate(self, texts: Sequence[str], src: str, tgt: str) -> list[str | None]:
        if self.down:
            self.down = False
            raise ConnectionError("connection refused")
        return super().translate(texts, src, tgt)


def test_backend_errors_are_retried_on_the_next_run(translating) -> None:
    wh, loaded = translating
    flaky = FlakyDouble()
    first = run_translate(wh, loaded, "t1", log=quiet, backends={"double": flaky})
    assert first["rejected"] == 3
    errors = [e for (e,) in wh.query("SELECT DISTINCT error FROM translation_cache")]
    assert errors == ["ConnectionError: connection refused"]
    second = run_translate(wh, loaded, "t2", log=quiet, backends={"double": flaky})
    assert (second["translated"], second["skipped"]) == (3, 0)


def test_translate_commands(tiny_models, tmp_path) -> None:
    from typer.testing import CliRunner

    from globmed_data.cli import app

    runner = CliRunner()
    (tmp_path / "items.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    mapping = {
        "task": "mcqa",
        "key": "id",
        "question": "question",
        "options": {"style": "list", "field": "options"},
        "answer": {"style": "letter", "field": "answer"},
    }
    config = write_config(
        tmp_path,
        [{"name": "exam", "paths": ["items.jsonl"], "language": "en", "mapping": mapping}],
        translate={
            "enabled": True,
            "backends": {"tiny": {"kind": "hf", "model": str(tiny_models / "causal"), "max_new_tokens": 8}},
            "jobs": [{"name": "j", "targets": ["sw"], "backend": "tiny"}],
        },
        warehouse="wh.duckdb",
    )
    wh = str(tmp_path / "wh.duckdb")
    with Warehouse(wh) as w:
        collect_all(w, load_config(config))
    ran = runner.invoke(app, ["translate", "run", "-c", str(config)])
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.stdout)["rejected"] == 3
    tico = tmp_path / "tico"
    tico.mkdir()
    (tico / "tico19_en-sw.jsonl").write_text(
        json.dumps({"en": "The patient has a fever.", "tgt": SWAHILI[1]}) + "\n"
    )
    scored = runner.invoke(
        app, ["translate", "eval", "-c", str(config), "-b", "tiny", "-l", "sw", "--tico", str(tico), "--json"]
    )
    assert scored.exit_code == 0, scored.output
    assert json.loads(scored.stdout)[0]["target_language"] == "sw"
    missing = runner.invoke(
        app, ["translate", "eval", "-c", str(config), "-b", "tiny", "-l", "xx", "--tico", str(tico)]
    )
    assert missing.exit_code == 2 and "no TICO-19 file for 'xx'" in missing.output
    unknown = runner.invoke(app, ["translate", "eval", "-c", str(config), "-b", "nope"])
    assert unknown.exit_code == 2 and "no backend 'nope'" in unknown.output
    exported = runner.invoke(
        app, ["translate", "review", "export", "-w", wh, "-o", str(tmp_path / "r.jsonl")]
    )
    assert exported.exit_code == 0 and "0 entries for review" in exported.stdout  # none passed the checks
    (tmp_path / "bad.jsonl").write_text(json.dumps({"entry_id": "x", "verdict": "maybe"}) + "\n")
    imported = runner.invoke(app, ["translate", "review", "import", str(tmp_path / "bad.jsonl"), "-w", wh])
    assert imported.exit_code == 3 and "not one of accept, fix, reject" in imported.output
    status = json.loads(runner.invoke(app, ["status", "-w", wh, "--json"]).stdout)
    assert status["translated"]["by_target"] == {"sw": {"ok": 0, "rejected": 3}}


def test_a_run_stopped_after_a_chunk_is_finished_by_the_next(translating, monkeypatch) -> None:
    from globmed_data import faults
    from globmed_data.translate import stage

    wh, loaded = translating
    monkeypatch.setattr(stage, "CHUNK", 1)  # one parent per commit
    monkeypatch.setenv(faults.ENV, "translate.chunk:1:raise")
    faults.reset()
    with pytest.raises(faults.InjectedFault):
        run_translate(wh, loaded, "killed", log=quiet, backends={"double": SwahiliDouble()})
    assert stage.pending(wh, loaded) == 2  # the first parent's outcome was committed
    monkeypatch.delenv(faults.ENV)
    again = run_translate(wh, loaded, "again", log=quiet, backends={"double": SwahiliDouble()})
    assert (again["translated"], again["skipped"]) == (2, 1) and stage.pending(wh, loaded) == 0
    assert wh.query("SELECT count(*) FROM entries WHERE origin = 'translated'")[0][0] == 3
    faults.reset()


def test_eval_reads_a_parallel_set_in_any_layout(translating, tmp_path) -> None:
    """A biomedical test set as CSV files named by language, columns of their own: one
    translate.eval_sets entry describes it, and the same scores as TICO-19's come out."""
    wh, loaded = translating
    folder = tmp_path / "medline"
    folder.mkdir()
    words = ["one", "two", "three", "four", "five", "six", "seven", "eight"]
    rows = [(f"Sentence {w} about a fever.", s) for w, s in zip(words, SWAHILI, strict=True)]
    lines = ["id,english,translation"] + [f'{k},"{en}","{sw}"' for k, (en, sw) in enumerate(rows)]
    (folder / "medline_en2swa.csv").write_text("\n".join(lines) + "\n")
    (folder / "medline_en2fra.csv").write_text('id,english,translation\n0,"A fever.","Une fièvre."\n')
    spec = {"name": "medline", "paths": [str(folder / "*.csv")], "source_text": "english",
            "target_text": "translation", "target_language": {"pattern": r"2([a-z]+)\.csv$",
                                                              "map": {"swa": "sw", "fra": "fr"}}}  # fmt: skip
    corpus = ConfiguredCorpus(TranslateSettings.model_validate({"eval_sets": [spec]}).eval_sets[0], loaded)
    assert [p.source for p in corpus.pairs("fr", 10)] == ["A fever."]

    class Oracle(SwahiliDouble):
        """TEST DOUBLE: answers with the reference, so the scores must be perfect."""

        def translate(self, texts: Sequence[str], src: str, tgt: str) -> list[str | None]:
            masked = {Protector().mask(en)[0]: sw for en, sw in rows}
            return [masked[t] for t in texts]

    translator = Translator(wh, loaded, "eval", quiet, backends={"double": Oracle()})
    scored = evaluate(translator, "double", corpus, ["sw"], 100, quiet)
    assert scored[0]["dataset"] == "medline" and scored[0]["segments"] == 8 and scored[0]["chrf_pp"] == 100.0
    with pytest.raises(FileNotFoundError, match="eval set 'medline' has no pairs into 'zu'"):
        corpus.pairs("zu", 10)


@pytest.mark.slow
@needs_ray
def test_a_translation_model_runs_in_a_ray_actor_with_the_same_outputs(translating, tiny_models, monkeypatch):
    """On Ray, the hf backend's model is loaded once in an actor (asking for its GPUs: none here)
    and the stage writes what it returns: the same cache and outcomes as the model run here."""
    import ray as ray_module

    from globmed_data.pipeline.executor import RayExecutor
    from globmed_data.translate.settings import HFBackendSettings

    wh, loaded = translating
    settings = HFBackendSettings(
        kind="hf", model=str(tiny_models / "seq2seq"), max_new_tokens=24, batch_size=8
    )
    loaded = _with_backend(loaded, {"tiny": settings}, "tiny")
    outputs = (
        "SELECT segment_hash, output FROM translation_cache ORDER BY ALL",
        "SELECT parent_entry_id, status, reasons FROM translations ORDER BY ALL",
    )
    here_counts = run_translate(wh, loaded, "here", log=quiet)
    here = [wh.query(q) for q in outputs]
    with wh.transaction() as con:
        con.execute("DELETE FROM translation_cache")
        con.execute("DELETE FROM translations")

    hosted: list[tuple[str, float, int | None]] = []
    host = RayExecutor.host

    def recorded(self: RayExecutor, factory, gpus: float, *args, cpus: int | None = None):
        hosted.append((args[0], gpus, cpus))
        return host(self, factory, gpus, *args, cpus=cpus)

    monkeypatch.setattr(RayExecutor, "host", recorded)
    ray = RayExecutor(None, 2)
    try:
        counts = run_translate(wh, loaded, "ray", log=quiet, executor=ray)
        deadline = time.monotonic() + 30  # the stage ended its actor: its CPU is free again
        while ray_module.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ray_module.available_resources().get("CPU", 0) == 2
    finally:
        ray.close()
    assert hosted == [("tiny", 0.0, None)]  # no GPU: the model takes a whole node's CPUs
    assert [wh.query(q) for q in outputs] == here and here[0]
    assert counts["model_segments"] == here_counts["model_segments"] > 0
