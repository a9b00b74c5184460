"""bench/eight_sets.py combines SPLIT runs and the MIX run only when they drew the same test sets."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from tests.helpers.numbers import approx_tree
from trice.utils.io import read_json, write_json
from trice.pipeline.intervals import per_question

SPEC = importlib.util.spec_from_file_location("eight_sets", Path(__file__).resolve().parents[2] / "bench" / "eight_sets.py")
bench = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bench)

TASK_SETS = {"math": ["asdiv", "svamp", "gsm8k"], "qa": ["webq", "nq", "triviaqa"], "lama": ["trex"], "mlqa": ["xquad-zh"]}


def _results(sets: list[str], settings: list[str], acc: dict[str, float], n_test: int = 300, used: int = 300) -> dict:
    """A run's results.json: accuracy ``acc[setting]`` on every set, tool rate 1 except zero-shot."""
    return {
        "config": {"recipe": {"seed": 0, "data": {"n_test": n_test, "test_fraction": 0.3}}, "splits": {"datasets": {ds: {"test_used": used} for ds in sets}}},
        "rows": {s: {ds: acc[s] for ds in sets} | {"avg": acc[s]} for s in settings},
        "tool_rate_by_dataset": {s: {ds: 0.0 if s == "zero-shot" else 1.0 for ds in sets} for s in settings},
    }


def _with_answers(results: dict) -> dict:
    """The results with the per-question record a report writes: each setting right on the first
    ``round(accuracy * n)`` questions of every set, so a better setting is right on a superset."""
    sizes = {ds: d["test_used"] for ds, d in results["config"]["splits"]["datasets"].items()}
    judged = {
        s: {ds: {f"{ds}-{i:03d}": (i < round(row[ds] * n), s != "zero-shot") for i in range(n)} for ds, n in sizes.items()}
        for s, row in results["rows"].items()
    }
    return results | {"per_question": per_question(judged)}


ALL = ["zero-shot", "sft-0", "sft-100", "trice-i", "trice-all"]
ACC = {"zero-shot": 0.05, "sft-0": 0.06, "sft-100": 0.2, "trice-i": 0.19, "trice-all": 0.21}


def _write_all(tmp_path: Path, **override: dict) -> tuple[Path, dict[str, Path]]:
    mix = tmp_path / "mix.json"
    write_json(mix, override.get("mix", _results([d for s in TASK_SETS.values() for d in s], ALL, ACC)))
    split = {}
    for task, sets in TASK_SETS.items():
        split[task] = tmp_path / f"{task}.json"
        write_json(split[task], override.get(task, _results(sets, ALL if task == "math" else ALL[1:], {s: a - 0.01 for s, a in ACC.items()})))
    return mix, split


def test_complete_tables_take_zero_shot_from_mix_and_judge_acceptance(tmp_path: Path) -> None:
    mix, split = _write_all(tmp_path)
    result = bench.build(mix, split)
    assert result["complete"] and not result["missing"]
    assert list(result["mix"]["test_sizes"]) == list(bench.TEST_SETS)
    assert result["split"]["rows"]["zero-shot"]["avg"] == pytest.approx(0.05)  # the MIX run's, not the math benchmark's 0.04
    assert result["split"]["rows"]["trice-all"]["avg"] == pytest.approx(0.20)
    assert all(r["n_sets"] == 8 for h in ("split", "mix") for r in result[h]["rows"].values())
    assert result["mix"]["rows"]["sft-100"]["tool_rate"] == 1.0 and result["mix"]["rows"]["zero-shot"]["tool_rate"] == 0.0
    assert result["acceptance"]["beats"] == {"zero-shot": True, "sft-0": True, "sft-100": True}
    # trice-all 0.21 vs sft-100 0.20 on 300 questions per set is inside the noise; vs zero-shot's 0.05 it is not
    assert result["acceptance"]["beyond_noise"] == {"zero-shot": "higher", "sft-0": "higher", "sft-100": "no difference"}
    mix = result["mix"]
    assert set(mix["intervals"]) == set(mix["rows"]) and set(mix["intervals"]["trice-all"]) == set(bench.TEST_SETS) | {"avg", "tool_rate"}
    low, high = mix["intervals"]["trice-all"]["nq"]  # Wilson, 21% of 300
    assert low == pytest.approx(0.1670, abs=1e-3) and high == pytest.approx(0.2606, abs=1e-3)
    low, high = mix["intervals"]["trice-all"]["avg"]  # eight sets: the half-width shrinks by sqrt(8)
    assert high - low == pytest.approx(2 * 1.96 * (0.21 * 0.79 / 300 / 8) ** 0.5, rel=1e-4)
    assert mix["intervals"]["sft-100"]["tool_rate"] == [1.0, 1.0]
    assert list(mix["differences"])[:2] == ["trice-all vs trice-i", "trice-all vs sft-100"]
    assert result["split_vs_mix"]["trice-all (split) vs trice-all (mix)"]["avg"]["difference"] == pytest.approx(-0.01)
    table = bench.markdown(result)
    assert f"| trice-all | 21.0 [{100 * mix['intervals']['trice-all']['webq'][0]:.1f}, " in table
    assert "| trice-all vs zero-shot | +16.0 [" in table and "## SPLIT minus MIX" in table


def test_a_missing_run_leaves_the_result_incomplete_and_named(tmp_path: Path) -> None:
    mix, split = _write_all(tmp_path)
    split["mlqa"].unlink()
    result = bench.build(mix, split)
    assert not result["complete"] and result["missing"] == [str(split["mlqa"])] and "acceptance" not in result
    assert result["split"]["rows"]["trice-i"]["n_sets"] == 7 and "xquad-zh" not in result["split"]["rows"]["trice-i"]
    assert result["split"]["rows"]["zero-shot"]["n_sets"] == 8  # from the MIX run
    table = bench.markdown(result).split("## SPLIT")[1].split("Accuracy differences")[0]
    assert "| trice-i (7 of 8 sets) | " in table and table.count(" | - |") == 4  # xquad-zh not run: "-" in each SPLIT row but zero-shot


@pytest.mark.parametrize(
    "task, results, message",
    [
        ("qa", _results(TASK_SETS["qa"], ALL[1:], ACC, n_test=200), "drew with"),
        ("lama", _results(TASK_SETS["lama"], ALL[1:], ACC, used=250), "trex has 300 test questions, .*lama.json has 250"),
        ("lama", _results(["trex", "lama-extra"], ALL[1:], ACC), "not among the benchmark's eight"),
        ("mlqa", _results(TASK_SETS["mlqa"], ["sft-0", "sft-100", "trice-i"], ACC), None),
    ],
)
def test_sources_that_drew_other_questions_are_refused(tmp_path: Path, task: str, results: dict, message: str | None) -> None:
    mix, split = _write_all(tmp_path, **{task: results})
    if message is None:  # a run without a row is simply incomplete in that row
        result = bench.build(mix, split)
        assert not result["complete"] and result["split"]["rows"]["trice-all"]["n_sets"] == 7
        return
    with pytest.raises(ValueError, match=message) as err:
        bench.build(mix, split)
    assert f"{task}.json" in str(err.value)


def test_the_committed_result_is_what_the_script_builds_from_the_committed_runs() -> None:
    """The eight-set tables of docs/benchmarks.md are checked against eight_sets/results.json; this checks the file itself,
    intervals included, against the committed reports it is built from."""
    results = bench.ROOT / "bench" / "results"
    split = {t: bench.OUT / f"split-{t}" / "results.json" for t in ("qa", "lama", "mlqa")} | {"math": results / "math_benchmark" / "results.json"}
    rebuilt = bench.build(bench.OUT / "mix" / "results.json", split)
    committed = read_json(bench.OUT / "results.json")
    for key in ("split", "mix", "split_vs_mix", "interval_method", "acceptance"):
        assert committed[key] == approx_tree(json.loads(json.dumps(rebuilt[key]))), key


def test_recorded_per_question_results_are_bootstrapped_and_paired(tmp_path: Path) -> None:
    """TRICE-ALL right on a superset of TRICE-I's questions, 2 points more per set: unpaired, that is
    inside the noise; paired, only the 6 questions per set where they differ count, and it is not."""
    binomial = bench.build(*_write_all(tmp_path / "binomial"))
    assert binomial["mix"]["differences"]["trice-all vs trice-i"]["avg"]["verdict"] == "no difference"
    tasks = {t: _with_answers(_results(sets, ALL if t == "math" else ALL[1:], {s: a - 0.01 for s, a in ACC.items()})) for t, sets in TASK_SETS.items()}
    mix = _with_answers(_results([d for s in TASK_SETS.values() for d in s], ALL, ACC))
    result = bench.build(*_write_all(tmp_path / "paired", mix=mix, **tasks))
    assert result["interval_method"].startswith("95% percentile bootstrap over test questions, 2,000 resamples, seed 0")
    paired = result["mix"]["differences"]["trice-all vs trice-i"]
    assert paired["avg"]["difference"] == pytest.approx(0.02) and paired["avg"]["verdict"] == "higher"
    assert result["mix"]["intervals"]["zero-shot"]["tool_rate"] == [0.0, 0.0]
    assert result["split_vs_mix"]["trice-all (split) vs trice-all (mix)"]["avg"]["verdict"] == "lower"  # 1 point less on every set
    mix_path, split = _write_all(tmp_path / "unfinished", mix=mix, **tasks)
    split["mlqa"].unlink()  # a run not finished: pairs cover the sets both settings have
    unfinished = bench.build(mix_path, split)["split"]["differences"]["trice-all vs zero-shot"]
    assert "xquad-zh" not in unfinished and unfinished["avg"]["difference"] == pytest.approx(0.15)
    tasks["qa"].pop("per_question")  # one run without the record: every table falls back to binomial intervals
    mixed = bench.build(*_write_all(tmp_path / "mixed", mix=mix, **tasks))
    assert mixed["interval_method"] == binomial["interval_method"] and mixed["mix"]["intervals"] == binomial["mix"]["intervals"]


def test_the_benchmark_recipes_nq_dpr_is_read_as_the_committed_nq() -> None:
    """A rerun of the SPLIT or MIX recipe names NQ ``nq-dpr``; its results land in the committed ``nq`` column."""
    rows = {"rows": {"trice-i": {"nq-dpr": 0.2, "webq": 0.1}}, "intervals": {"trice-i": {"nq-dpr": [0.1, 0.3]}}}
    assert bench._committed_nq(rows) == {"rows": {"trice-i": {"nq": 0.2, "webq": 0.1}}, "intervals": {"trice-i": {"nq": [0.1, 0.3]}}}


def test_each_runs_report_is_copied_beside_the_result(tmp_path: Path, capsys) -> None:
    """The runs named on the command line leave their reports in the result's folder, so the folder
    holds everything the tables are rebuilt from."""
    runs = tmp_path / "runs"
    for name in ("mix", "split-qa", "split-lama", "split-mlqa"):
        shutil.copytree(bench.OUT / name, runs / name / "report")
    out = tmp_path / "eight_sets" / "results.json"
    sources = ["--mix", str(runs / "mix" / "report" / "results.json")]
    sources += [a for t in ("qa", "lama", "mlqa") for a in (f"--split-{t}", str(runs / f"split-{t}" / "report" / "results.json"))]
    bench.main([*sources, "--output", str(out)])
    for name in ("mix", "split-qa", "split-lama", "split-mlqa"):
        assert sorted(p.name for p in (out.parent / name).iterdir()) == sorted(p.name for p in (bench.OUT / name).iterdir())
    assert read_json(out)["complete"] and (out.parent / "report.md").read_text() == (bench.OUT / "report.md").read_text()
    assert str(out) in capsys.readouterr().out
