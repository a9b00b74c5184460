"""Stage II RLEF training and checkpoint selection on the tiny model: logged loss parts, the rank loss
working end to end, TRICE-II and TRICE-ALL starts, resume, forward methods, dev selection (the start,
step 0, among the candidates), errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from transformers import TrainerCallback

from trice.generation.adapters import ADAPTER_CONFIG, ADAPTER_WEIGHTS
from trice.core.schema import Example, save_examples
from trice.utils.io import DataError
from trice.stage2.rlef_config import RLEFConfig

from tests.helpers.callbacks import KillAfterSave, Killed, StepRecorder

EVERY_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _row(i: int) -> dict:
    """A scored group: the gold tool call first, then worse candidates (paper levels 20 > 15 > 5 > 0)."""
    return {
        "id": f"q{i}",
        "task": "math",
        "question": f"What is {i} + {i}?",
        "answers": [str(2 * i)],
        "responses": [f"calculator({i}+{i})", f"The answer is {2 * i}.", f"calculator({i}*{i}+1)", f"The answer is {i + 1}."],
        "scores": [20, 15, 5, 0],
    }


ROWS = [_row(i) for i in range(6)] + [dict(_row(6), scores=[10, 10, 10, 10])]  # a tie group: SFT term only


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """See tests/stage1/test_train_sft.py: tiny matmuls on a shared machine run fastest on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _config(tiny_model_dir: Path, tmp_path: Path, out: str = "run", **kw) -> RLEFConfig:
    values = dict(
        model=str(tiny_model_dir),
        data=str(_write(tmp_path / "scored.jsonl", ROWS)),
        output_dir=str(tmp_path / out),
        max_steps=4,
        gradient_accumulation_steps=2,
        save_steps=2,
        learning_rate=1e-3,
        seed=7,
    )
    return RLEFConfig(**(values | kw))


def _lora_state(adapter_dir: Path) -> dict[str, torch.Tensor]:
    from trice.generation.adapters import read_adapter_weights

    return read_adapter_weights(adapter_dir)


def _log(run: Path) -> list[dict]:
    return json.loads((run / "train_log.json").read_text())


# --- training ----------------------------------------------------------------------------------


def test_training_logs_loss_parts_and_writes_outputs(tiny_model_dir, tmp_path):
    from trice.stage2.train_rlef import train_rlef

    adapter = train_rlef(_config(tiny_model_dir, tmp_path, alpha=0.5))
    run = tmp_path / "run"
    assert adapter == run / "adapter" and (adapter / "adapter_config.json").is_file()
    entries = [e for e in _log(run) if "loss" in e]
    assert [e["step"] for e in entries] == [1, 2, 3, 4]
    for e in entries:  # each logged loss is alpha * rank + sft over the same forwards
        assert e["rank"] >= 0 and e["sft"] > 0
        assert e["loss"] == pytest.approx(0.5 * e["rank"] + e["sft"], rel=1e-4)
    summary = _log(run)[-1]
    assert summary["groups"] == len(ROWS) and summary["dropped_too_long"] == 0 and summary["run_tokens"] > 0
    assert json.loads((run / "rlef_config.json").read_text())["alpha"] == 0.5
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["checkpoint-2", "checkpoint-4"]


def test_sft_ties_all_reaches_the_trainer(tiny_model_dir, tmp_path):
    """With gold tied by a True-Yes, sft_ties=all imitates both, so the first step's SFT term differs."""
    from trice.stage2.train_rlef import train_rlef

    tied = [dict(_row(i), scores=[20, 20, 5, 0]) for i in range(4)]
    data = str(_write(tmp_path / "tied.jsonl", tied))
    sft = {}
    for ties in ("first", "all"):
        config = _config(tiny_model_dir, tmp_path, out=ties, data=data, alpha=0.0, max_steps=1, save_steps=1, sft_ties=ties)
        train_rlef(config)
        sft[ties] = next(e for e in _log(tmp_path / ties) if "loss" in e)["sft"]
    assert sft["first"] != pytest.approx(sft["all"], rel=1e-3)
    assert json.loads((tmp_path / "all" / "rlef_config.json").read_text())["sft_ties"] == "all"


def test_reductions_reach_the_loss_with_the_batch_padded_length(tiny_model_dir):
    """Over one forward of three groups: released and paper sum the rank term (three times
    group_mean's mean), paper sums the best responses' NLL, released divides that by 3 x the longest
    prompt+response of the forward."""
    from trice.generation.models import load_model
    from trice.stage2.rlef_loss import RLEFLoss
    from trice.stage2.train_rlef import build_groups, collate_groups, rlef_batch_loss

    model, tok = load_model(str(tiny_model_dir))
    model.eval()
    groups = build_groups(ROWS[:3], tok, "alpaca", 512, "math")
    longest = max(len(g["prompt_ids"]) + len(r) for g in groups for r in g["response_ids"])
    batch = collate_groups(groups)
    with torch.no_grad():
        parts = {r: rlef_batch_loss(model, batch, RLEFLoss(alpha=1.0, reduction=r), "naive")[1] for r in ("group_mean", "released", "paper")}
    assert parts["paper"]["rank"].item() == pytest.approx(3 * parts["group_mean"]["rank"].item(), rel=1e-5)
    assert parts["released"]["rank"].item() == pytest.approx(parts["paper"]["rank"].item(), rel=1e-6)
    assert parts["released"]["sft"].item() * 3 * longest == pytest.approx(parts["paper"]["sft"].item(), rel=1e-5)
    assert parts["paper"]["sft"].item() > 3 * parts["group_mean"]["sft"].item()  # summed over > 1 token per response


def test_reduction_reaches_the_trainer_and_recipes(tiny_model_dir, tmp_path):
    """`rlef: {reduction: ...}` in a recipe reaches the stage's config and its fingerprint; at the
    default the key stays out of the fingerprint, so finished runs keep theirs."""
    from trice.utils.config import load_layered_yaml
    from trice.pipeline.plan import plan_recipe
    from trice.pipeline.stage_specs import stage
    from trice.stage2.train_rlef import train_rlef

    recipe = Path(__file__).resolve().parents[2] / "recipes" / "demo.yaml"
    rlef = load_layered_yaml(recipe)["rlef"]
    default = stage(plan_recipe(recipe, {"run_dir": str(tmp_path / "r")}), "train-trice-all")[0]
    released = stage(plan_recipe(recipe, {"run_dir": str(tmp_path / "r"), "rlef": rlef | {"reduction": "released"}}), "train-trice-all")[0]
    assert "reduction" not in default and released == default | {"reduction": "released"}

    sft = {}
    for reduction in ("group_mean", "paper"):
        train_rlef(_config(tiny_model_dir, tmp_path, out=reduction, alpha=0.0, max_steps=1, save_steps=1, reduction=reduction))
        sft[reduction] = next(e for e in _log(tmp_path / reduction) if "loss" in e)["sft"]
    assert sft["paper"] > 3 * sft["group_mean"]  # summed over the response's tokens (> 3 each), not averaged
    assert json.loads((tmp_path / "paper" / "rlef_config.json").read_text())["reduction"] == "paper"


def _gold_minus_worst(model_dir: Path, adapter: Path | None) -> float:
    """Mean over the groups of (length-normalised log-prob of the gold response - that of the worst)."""
    from trice.generation.models import load_model
    from trice.stage2.rlef_forward import grouped_response_logprobs
    from trice.training.tokens import prompt_token_ids, target_token_ids

    model, tok = load_model(str(model_dir), adapter=adapter)
    gaps = []
    with torch.no_grad():
        for row in ROWS[:6]:
            prompt = torch.tensor(prompt_token_ids(row["task"], row["question"], tok))
            responses = [torch.tensor(target_token_ids(r, tok)) for r in row["responses"]]
            scores = grouped_response_logprobs(model, prompt, responses).scores
            gaps.append(float(scores[0] - scores[-1]))
    return sum(gaps) / len(gaps)


def test_rank_loss_lifts_gold_over_worst_end_to_end(tiny_model_dir, tmp_path):
    """On a random model all candidates score almost alike, so a hinge with margin 0 is nearly idle;
    margin 1 keeps it working. The SFT term alone (alpha 0) lifts the gold too, so the rank loss
    must lift it further than that."""
    from trice.stage2.train_rlef import train_rlef

    after = {}
    for alpha in (0.0, 1.0):
        config = _config(
            tiny_model_dir,
            tmp_path,
            out=f"alpha{alpha}",
            alpha=alpha,
            margin=1.0,
            max_steps=12,
            gradient_accumulation_steps=1,
            groups_per_step=2,
            learning_rate=1e-2,
            lora_dropout=0.0,
            target_modules=EVERY_LINEAR,
            save_steps=12,
        )
        after[alpha] = _gold_minus_worst(tiny_model_dir, train_rlef(config))
    before = _gold_minus_worst(tiny_model_dir, None)  # a fresh LoRA (B = 0) is the base model
    assert after[1.0] > before + 0.4 and after[1.0] > after[0.0] + 0.1, (before, after)
    ranks = [e["rank"] for e in _log(tmp_path / "alpha1.0") if "rank" in e]
    assert sum(ranks[-3:]) / 3 < sum(ranks[:3]) / 3, ranks


@pytest.fixture(scope="module")
def stage1_adapter(tiny_model_dir, tmp_path_factory) -> Path:
    from trice.stage1.config import SFTConfig
    from trice.stage1.train_sft import train_sft

    tmp = tmp_path_factory.mktemp("stage1")
    rows = [{"id": r["id"], "task": "math", "question": r["question"], "output": r["responses"][0]} for r in ROWS]
    config = SFTConfig(
        model=str(tiny_model_dir),
        data=str(_write(tmp / "dtool.jsonl", rows)),
        output_dir=str(tmp / "sft"),
        max_steps=2,
        per_device_train_batch_size=4,
        learning_rate=1e-2,
        save_steps=2,
        seed=3,
    )
    return train_sft(config)


class _StartWeights(TrainerCallback):
    """Keeps the trainable LoRA weights as training begins (step 0)."""

    def __init__(self):
        self.state: dict[str, torch.Tensor] = {}

    def on_train_begin(self, args, state, control, model=None, **kw):
        from peft import get_peft_model_state_dict

        self.state = {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}


def test_trice_all_starts_from_the_stage1_adapter(tiny_model_dir, tmp_path, stage1_adapter):
    from trice.stage2.train_rlef import train_rlef

    start = _StartWeights()
    final = _lora_state(train_rlef(_config(tiny_model_dir, tmp_path, init_adapter=str(stage1_adapter)), callbacks=[start]))
    stage1 = _lora_state(stage1_adapter)
    assert start.state.keys() == stage1.keys()
    assert all(torch.equal(start.state[k], stage1[k]) for k in stage1)  # loaded, not a fresh LoRA
    assert any(not torch.equal(final[k], stage1[k]) for k in stage1)  # and trained further


def test_trice_ii_starts_from_a_fresh_lora(tiny_model_dir, tmp_path, stage1_adapter):
    from trice.stage2.train_rlef import train_rlef

    start = _StartWeights()
    final = _lora_state(train_rlef(_config(tiny_model_dir, tmp_path, lora_r=4), callbacks=[start]))
    assert all(not v.any() for k, v in start.state.items() if "lora_B" in k)  # identity at step 0
    assert any(v.any() for k, v in final.items() if "lora_B" in k)
    assert next(v for k, v in final.items() if "lora_A" in k).shape[0] == 4  # the config's rank, not stage I's
    assert final.keys() == _lora_state(stage1_adapter).keys()


def test_resume_after_a_kill_matches_a_straight_run(tiny_model_dir, tmp_path):
    from trice.stage2.train_rlef import train_rlef

    straight = train_rlef(_config(tiny_model_dir, tmp_path, out="straight"))
    with pytest.raises(Killed):
        train_rlef(_config(tiny_model_dir, tmp_path, out="resumed"), callbacks=[KillAfterSave(2)])
    run = tmp_path / "resumed"
    assert not (run / "adapter").exists() and (run / "checkpoints" / "checkpoint-2").is_dir()
    steps = StepRecorder()
    resumed = train_rlef(_config(tiny_model_dir, tmp_path, out="resumed"), callbacks=[steps])
    assert steps.steps == [3, 4]

    a, b = _lora_state(straight), _lora_state(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5, rtol=0), k
    log = _log(run)
    assert [e["step"] for e in log if "rank" in e] == [1, 2, 3, 4]
    assert log[-1]["resumed_from"] == "checkpoint-2"
    assert 0 < log[-1]["run_tokens"] < _log(tmp_path / "straight")[-1]["run_tokens"]  # this run's share only


def test_a_restart_after_the_last_step_trains_nothing_more(tiny_model_dir, tmp_path):
    """A stage restarted once its training reached max_steps mid-epoch (killed before the adapter was
    saved, or during its dev evaluation) takes the last checkpoint as it is: transformers would train
    a step more on each restart."""
    from trice.stage2.train_rlef import train_rlef

    short = {"max_steps": 3, "save_steps": 3}  # 7 groups in pairs: 4 steps an epoch, so step 3 is mid-epoch
    straight = _lora_state(train_rlef(_config(tiny_model_dir, tmp_path, out="straight", **short)))
    with pytest.raises(Killed):
        train_rlef(_config(tiny_model_dir, tmp_path, out="resumed", **short), callbacks=[KillAfterSave(3)])
    run = tmp_path / "resumed"
    steps = StepRecorder()
    for _ in range(2):  # and again, with the adapter already saved
        resumed = _lora_state(train_rlef(_config(tiny_model_dir, tmp_path, out="resumed", **short), callbacks=[steps]))
        assert steps.steps == [] and sorted(p.name for p in (run / "checkpoints").iterdir()) == ["checkpoint-3"]
        assert resumed.keys() == straight.keys() and all(torch.equal(resumed[k], straight[k]) for k in straight)
        log = _log(run)
        assert [e["step"] for e in log if "rank" in e] == [1, 2, 3]
        assert (log[-1]["step"], log[-1]["resumed_from"], log[-1]["run_tokens"]) == (3, "checkpoint-3", 0)
    assert (run / "adapter" / "tokenizer_config.json").is_file()


def test_shared_prefix_and_naive_give_the_same_first_step(tiny_model_dir, tmp_path):
    from trice.stage2.train_rlef import train_rlef

    first = {}
    for method in ("shared_prefix", "naive"):
        train_rlef(_config(tiny_model_dir, tmp_path, out=method, method=method, max_steps=1, lora_dropout=0.0, groups_per_step=2))
        first[method] = next(e for e in _log(tmp_path / method) if "loss" in e)
    for key in ("loss", "rank", "sft"):
        assert first["shared_prefix"][key] == pytest.approx(first["naive"][key], rel=1e-5, abs=1e-6), key
    # the token count is the same work measured the same way, whichever forward ran it
    assert _log(tmp_path / "naive")[-1]["run_tokens"] == _log(tmp_path / "shared_prefix")[-1]["run_tokens"]


def test_groups_of_different_sizes_pad_into_one_batch(tiny_model_dir):
    from trice.generation.models import load_model
    from trice.stage2.rlef_loss import RLEFLoss
    from trice.stage2.train_rlef import build_groups, collate_groups, rlef_batch_loss

    model, tok = load_model(str(tiny_model_dir))
    rows = [ROWS[0], dict(ROWS[1], responses=ROWS[1]["responses"][:2], scores=[20, 0])]
    batch = collate_groups(build_groups(rows, tok, "alpaca", 512, "math"))
    loss_fn = RLEFLoss(alpha=1.0)
    with torch.no_grad():
        together, parts = rlef_batch_loss(model, batch, loss_fn, "shared_prefix")
        alone = [rlef_batch_loss(model, [g], loss_fn, "shared_prefix")[1] for g in batch]
    for key in ("rank", "sft"):  # both terms are means over groups
        assert float(parts[key]) == pytest.approx(sum(float(p[key]) for p in alone) / 2, rel=1e-5)
    assert float(together) == pytest.approx(float(parts["rank"] + parts["sft"]), rel=1e-6)


def test_too_long_groups_are_dropped_whole_and_counted(tiny_model_dir, caplog):
    from trice.generation.models import load_tokenizer
    from trice.stage2.train_rlef import build_groups

    tok = load_tokenizer(str(tiny_model_dir))
    long_row = dict(ROWS[1], id="long", responses=[ROWS[1]["responses"][0], "calculator(1+1) " * 200], scores=[20, 0])
    with caplog.at_level("WARNING"):
        groups = build_groups([ROWS[0], long_row], tok, "alpaca", 256, "math")
    assert [g["id"] for g in groups] == ["q0"]
    assert "dropped 1 of 2 groups" in caplog.text
    g = groups[0]
    assert len(g["response_ids"]) == 4 and all(r[-1] == tok.eos_token_id for r in g["response_ids"])
    assert g["rewards"] == [20.0, 15.0, 5.0, 0.0]


# --- checkpoint selection ----------------------------------------------------------------------


def _examples(ids: range, split: str = "train") -> list[Example]:
    return [Example(f"d{i}", "svamp", "math", f"What is {i} + {i}?", (str(2 * i),), split=split) for i in ids]


def test_carve_dev_is_deterministic_disjoint_and_order_free():
    from trice.stage2.select_checkpoint import carve_dev

    examples = _examples(range(20))
    train, dev = carve_dev(examples, 5, seed=1)
    assert len(dev) == 5 and len(train) == 15
    assert {e.id for e in train}.isdisjoint(e.id for e in dev)
    assert all(e.split == "dev" for e in dev) and all(e.split == "train" for e in train)
    assert [e.id for e in train] == [e.id for e in examples if e.id in {t.id for t in train}]  # input order kept
    again_train, again_dev = carve_dev(examples[::-1], 5, seed=1)
    assert {e.id for e in again_dev} == {e.id for e in dev}
    assert {e.id for e in carve_dev(examples, 5, seed=2)[1]} != {e.id for e in dev}
    with pytest.raises(ValueError, match="^n_dev: "):
        carve_dev(examples, 21, seed=1)
    with pytest.raises(ValueError, match="test split"):
        carve_dev(_examples(range(3), split="test"), 1, seed=1)


def test_load_dev_refuses_test_examples_and_training_ids(tmp_path):
    from trice.stage2.select_checkpoint import load_dev

    path = tmp_path / "dev.jsonl"
    save_examples(path, _examples(range(3)))
    assert [e.id for e in load_dev(path, {"q0"})] == ["d0", "d1", "d2"]
    with pytest.raises(ValueError, match=r"2 ids are also in the training data \(first: d1\)"):
        load_dev(path, {"d1", "d2"})
    save_examples(path, _examples(range(3), split="test"))
    with pytest.raises(ValueError, match="test split"):
        load_dev(path, set())


def _dev_path(tmp_path: Path) -> tuple[list[Example], Path]:
    dev = _examples(range(3))
    save_examples(tmp_path / "dev.jsonl", dev)
    return dev, tmp_path / "dev.jsonl"


def _make_right(run: Path, step: int) -> None:
    """Rewrite a step's saved dev responses to give the gold answer, so that step wins on a rerun."""
    path = run / "dev" / f"{step}.jsonl"
    rows = [row | {"response": f"The answer is {row['answers'][0]}."} for row in map(json.loads, path.read_text().splitlines())]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _saved_generate(run: Path, step: int):
    from trice.responses.generate import GenerateConfig

    return GenerateConfig(**json.loads((run / "dev" / f"{step}.meta.json").read_text())["generate"])


def _no_generation(monkeypatch) -> None:
    from trice.generation import models

    def no_generation(*args, **kw):
        raise AssertionError("the dev responses were on disk: nothing to generate")

    monkeypatch.setattr(models, "load_model", no_generation)


def test_selection_evaluates_every_checkpoint_and_keeps_the_best(tiny_model_dir, tmp_path, monkeypatch):
    from trice.stage2.select_checkpoint import select_checkpoint
    from trice.pipeline.stage_specs import final_adapter
    from trice.stage2.train_rlef import train_rlef

    dev, dev_path = _dev_path(tmp_path)
    train_rlef(_config(tiny_model_dir, tmp_path, out="train-trice-ii", dev_data=str(dev_path), dev_max_new_tokens=6, dev_batch_size=2))
    run = tmp_path / "train-trice-ii"

    selection = json.loads((run / "selection.json").read_text())
    assert [s["step"] for s in selection["steps"]] == [0, 2, 4]  # the start (a fresh LoRA: the base model) first
    assert selection["steps"][0]["adapter"] is None and json.loads((run / "dev" / "0.meta.json").read_text())["weights_sha256"] is None
    for s in selection["steps"]:
        assert set(s["accuracy"]) == {"svamp", "total"} and s["n"] == 3
        assert 0 <= s["tool_rate"] <= 1 and set(s["tool_rate_by_dataset"]) == {"svamp"}
        assert sorted(json.loads(line)["id"] for line in (run / "dev" / f"{s['step']}.jsonl").read_text().splitlines()) == ["d0", "d1", "d2"]
    best = max(selection["steps"], key=lambda s: (s["accuracy"]["total"], -s["step"]))
    assert selection["best_step"] == best["step"] and selection["n_dev"] == 3
    assert (run / "dev_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # make step 4's answers right by hand: a rerun reuses the saved responses (generating nothing)
    # and picks step 4 as the argmax
    _make_right(run, 4)
    _no_generation(monkeypatch)
    generate = _saved_generate(run, 4)
    again = select_checkpoint(run, dev, generate)
    assert again["best_step"] == 4 and again["steps"][2]["accuracy"]["total"] == 1.0
    assert again == json.loads((run / "selection.json").read_text())
    four = _lora_state(run / "checkpoints" / "checkpoint-4")
    assert all(torch.equal(_lora_state(run / "adapter_best")[k], four[k]) for k in four)
    assert final_adapter(tmp_path, "trice-ii") == run / "adapter_best"

    # the base model as good as step 4: the tie goes to the start, which has no adapter to keep, so
    # the setting is evaluated on the base model
    _make_right(run, 0)
    start = select_checkpoint(run, dev, generate)
    assert start["best_step"] == 0 and start["best_adapter"] is None and start["selected_from"] is None
    assert not (run / "adapter_best").exists() and final_adapter(tmp_path, "trice-ii") is None

    # select_start false: the checkpoints alone, step 0 not judged
    checkpoints_only = select_checkpoint(run, dev, generate, select_start=False)
    assert [s["step"] for s in checkpoints_only["steps"]] == [2, 4] and checkpoints_only["best_step"] == 4
    assert all(torch.equal(_lora_state(run / "adapter_best")[k], four[k]) for k in four)

    # other generation settings make the saved responses stale
    with pytest.raises(AssertionError, match="nothing to generate"):
        select_checkpoint(run, dev, dataclasses.replace(generate, max_new_tokens=7))


def test_selection_keeps_the_stage1_start_where_no_checkpoint_beats_it(tiny_model_dir, tmp_path, stage1_adapter, monkeypatch):
    from trice.stage2.select_checkpoint import select_checkpoint
    from trice.stage2.train_rlef import train_rlef

    dev, dev_path = _dev_path(tmp_path)
    config = _config(tiny_model_dir, tmp_path, init_adapter=str(stage1_adapter), max_steps=2, dev_data=str(dev_path), dev_max_new_tokens=6, dev_batch_size=2)
    train_rlef(config)
    run = tmp_path / "run"
    steps = json.loads((run / "selection.json").read_text())["steps"]
    assert [(s["step"], s["adapter"]) for s in steps] == [(0, str(stage1_adapter)), (2, str(run / "checkpoints" / "checkpoint-2"))]

    _make_right(run, 0)  # stage II did not help on dev
    _no_generation(monkeypatch)
    selection = select_checkpoint(run, dev, _saved_generate(run, 0), init_adapter=stage1_adapter)
    assert selection["best_step"] == 0 and selection["selected_from"] == str(stage1_adapter)
    assert selection["best_adapter"] == str(run / "adapter_best")
    kept = [name for name in (ADAPTER_CONFIG, *ADAPTER_WEIGHTS) if (stage1_adapter / name).is_file()]
    assert sorted(p.name for p in (run / "adapter_best").iterdir()) == sorted(kept)
    assert all((run / "adapter_best" / name).read_bytes() == (stage1_adapter / name).read_bytes() for name in kept)  # byte for byte


def test_cli_trains(tiny_model_dir, tmp_path):
    from trice.cli import main

    data = _write(tmp_path / "scored.jsonl", ROWS[:2])
    args = ["train-rlef", "--model", str(tiny_model_dir), "--data", str(data), "--output_dir", str(tmp_path / "cli")]
    assert main([*args, "--max_steps", "1", "--gradient_accumulation_steps", "1", "--alpha", "0.1"]) == 0
    assert (tmp_path / "cli" / "adapter" / "adapter_config.json").is_file()
    assert json.loads((tmp_path / "cli" / "rlef_config.json").read_text())["alpha"] == 0.1


# --- config and data errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("alpha", -0.1),
        ("length_penalty", -1.0),
        ("margin", -1.0),
        ("method", "nope"),
        ("groups_per_step", 0),
        ("sft_ties", "best"),
        ("reduction", "sum"),
        ("dev_max_new_tokens", 0),
        ("dev_batch_size", 0),
        ("dev_data", "/no/such/dev.jsonl"),
        ("task", "nope"),
        ("gradient_checkpointing", True),
        ("learning_rate", 0.0),
        ("save_steps", 0),
        ("data", "/no/such/file.jsonl"),
    ],
)
def test_validate_names_the_field(field, value):
    with pytest.raises(ValueError, match=rf"^{field}: "):
        RLEFConfig(**{field: value}).validate()


def test_defaults_validate_and_paths_are_required_to_train(tmp_path):
    from trice.stage2.train_rlef import train_rlef

    RLEFConfig().validate()
    RLEFConfig(gradient_checkpointing=True, method="naive").validate()
    with pytest.raises(ValueError, match="^data: required"):
        train_rlef(RLEFConfig(output_dir=str(tmp_path)))
    with pytest.raises(ValueError, match="^output_dir: required"):
        train_rlef(RLEFConfig(data=str(_write(tmp_path / "s.jsonl", ROWS))))


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"scores": [20, 15, 5]}, "field 'scores': 3 scores for 4 responses"),
        ({"scores": [20, float("nan"), 5, 0]}, r"malformed JSON \(NaN is not valid JSON"),  # refused as it is read
        ({"responses": [], "scores": []}, "field 'responses': empty"),
        ({"task": "chess"}, "field 'task': unknown 'chess'"),
        ({"question": None}, "field 'question': expected string"),
        ({"id": "q0"}, "field 'id': duplicate"),
    ],
)
def test_bad_data_line_is_a_located_error(tiny_model_dir, tmp_path, bad, message):
    from trice.stage2.train_rlef import train_rlef

    path = _write(tmp_path / "bad.jsonl", [ROWS[0], ROWS[1] | bad])
    with pytest.raises(DataError, match=rf"{path}:2: {message}"):
        train_rlef(_config(tiny_model_dir, tmp_path, data=str(path)))


def test_a_decision_weight_counts_each_candidates_decision_token_that_many_times(tiny_model_dir):
    """The paper sum: each score and the SFT term's NLL gain (w - 1) x the decision token's log-prob;
    weight 1 takes the unweighted path and gives the unweighted loss."""
    from trice.generation.models import load_model
    from trice.stage2.rlef_forward import grouped_response_logprobs
    from trice.stage2.rlef_loss import RLEFLoss
    from trice.stage2.train_rlef import build_groups, collate_groups, rlef_batch_loss
    from trice.core.call_format import TEXT

    model, tok = load_model(str(tiny_model_dir))
    groups = build_groups(ROWS[:2], tok, "alpaca", 512, "math", calls=TEXT)
    assert [g["decisions"] for g in groups] == [[0, 0, 0, 0]] * 2  # every candidate decides at its first token
    batch, loss_fn = collate_groups(groups), RLEFLoss(alpha=1.0, reduction="paper")
    with torch.no_grad():
        plain = rlef_batch_loss(model, batch, loss_fn, "naive")[1]
        same = rlef_batch_loss(model, batch, loss_fn, "naive", decision_weight=1.0)[1]
        heavy = rlef_batch_loss(model, batch, loss_fn, "naive", decision_weight=3.0)[1]
        first = [grouped_response_logprobs(model, g["prompt_ids"], g["response_ids"], 1.0, "naive").token_logps[0, 0] for g in batch]
    assert torch.equal(plain["sft"], same["sft"]) and torch.equal(plain["scores"], same["scores"])
    assert heavy["sft"].item() == pytest.approx(plain["sft"].item() - 2 * sum(f.item() for f in first), rel=1e-5)  # gold is each best
