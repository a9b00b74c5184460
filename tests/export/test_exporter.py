"""``trice export`` on the tiny model: a merged export is a plain transformers model with the
base+adapter logits, an unmerged one a PEFT adapter with the same logits; an adapter trained on an
embedded model's cache directory is exported under the alias's Hub original; a push with no network is one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from trice.cli import main
from trice.utils.config import ConfigError
from trice.export.exporter import ExportConfig, public_name, run_export
from trice.generation.models import ORIGINALS

from tests.helpers.fake_servers import refused_url  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")
ALIAS = "smollm2-135m-instruct"


def _adapter(base_dir: Path | str, out: Path) -> tuple[Path, torch.Tensor]:
    """A LoRA adapter with random (non-zero) B weights saved by peft, and the base+adapter logits."""
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    lora = LoraConfig(task_type=TaskType.CAUSAL_LM, r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    model = get_peft_model(base, lora)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)  # peft starts B at zero: the adapter would change nothing
    model.save_pretrained(out)
    model.eval()
    return out, _logits(model)


def _logits(model) -> torch.Tensor:
    ids = torch.tensor([[5, 17, 42, 99, 3, 250, 7]])
    with torch.no_grad():
        return model(input_ids=ids).logits


def _text_files(root: Path) -> str:
    return "".join(p.read_text(errors="ignore") for p in root.iterdir() if p.suffix in (".json", ".md", ".txt", ".jinja"))


def test_merged_export_loads_with_transformers_and_keeps_the_logits(tiny_model_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter, expected = _adapter(tiny_model_dir, tmp_path / "adapter")
    out = tmp_path / "export"
    result = run_export(ExportConfig(output_dir=str(out), adapter=str(adapter)))
    assert result["merged"] and result["base_model"] == str(tiny_model_dir)
    names = set(result["files"])
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json", "trice_export.json"} <= names
    assert not any("adapter" in n for n in names) and not any(p.name.startswith(".") for p in tmp_path.iterdir())
    loaded = AutoModelForCausalLM.from_pretrained(out)  # no peft, no trice: a plain model
    assert type(loaded).__name__ == "LlamaForCausalLM"
    torch.testing.assert_close(_logits(loaded), expected, rtol=1e-5, atol=1e-5)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert not torch.allclose(_logits(base), expected, atol=1e-3)  # the adapter did change something
    assert AutoTokenizer.from_pretrained(out).encode("calculator(1+2)") == AutoTokenizer.from_pretrained(tiny_model_dir).encode("calculator(1+2)")

    run_export(ExportConfig(output_dir=str(out), adapter=str(adapter)))  # an earlier export is replaced
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not an earlier export"):
        run_export(ExportConfig(output_dir=str(tmp_path / "other"), adapter=str(adapter)))
    assert (tmp_path / "other" / "keep.txt").read_text() == "mine"


def test_unmerged_export_records_the_hub_original_not_the_cache_path(tiny_model_dir: Path, tmp_path: Path, monkeypatch) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    monkeypatch.setenv("TRICE_CACHE_DIR", str(tmp_path / "cache"))
    cached = tmp_path / "cache" / "models" / ALIAS  # where resolve_model keeps a converted embedded model
    shutil.copytree(tiny_model_dir, cached)
    adapter, expected = _adapter(cached, tmp_path / "adapter")
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == str(cached)
    assert public_name(str(cached)) == ALIAS and public_name("org/model") == "org/model"

    out = tmp_path / "export"
    assert main(["export", "--adapter", str(adapter), "--output_dir", str(out), "--no_merge"]) == 0
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == ORIGINALS[ALIAS][0]
    assert json.loads((out / "trice_export.json").read_text())["base_model"] == ORIGINALS[ALIAS][0]
    assert json.loads((out / "trice_export.json").read_text())["embedded_alias"] == ALIAS
    assert str(tmp_path) not in _text_files(out)
    assert (out / "adapter_model.safetensors").is_file() and not (out / "model.safetensors").exists()
    reloaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(cached), out).eval()
    torch.testing.assert_close(_logits(reloaded), expected, rtol=1e-5, atol=1e-5)

    merged = tmp_path / "merged"
    assert main(["export", "--adapter", str(adapter), "--output_dir", str(merged)]) == 0
    assert str(tmp_path) not in _text_files(merged)
    torch.testing.assert_close(_logits(AutoModelForCausalLM.from_pretrained(merged)), expected, rtol=1e-5, atol=1e-5)


def test_bad_requests_are_one_line_errors(tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    assert main(["export", "--adapter", str(tmp_path / "nope")]) == 2
    assert "output_dir: required" in capsys.readouterr().err
    assert main(["export", "--adapter", str(tmp_path / "nope"), "--output_dir", str(tmp_path / "o")]) == 2
    assert "adapter" in capsys.readouterr().err and not (tmp_path / "o").exists()
    assert main(["export", "--model", str(tiny_model_dir), "--output_dir", str(tmp_path / "o"), "--no_merge"]) == 2


def test_push_without_network_is_one_line_and_keeps_the_export(
    tiny_model_dir: Path,
    tmp_path: Path,
    refused_url: str,
    monkeypatch,
    capsys,  # noqa: F811
) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", refused_url.rsplit("/", 1)[0])
    monkeypatch.setenv("HF_TOKEN", "hf_test_token_not_real")
    adapter, _ = _adapter(tiny_model_dir, tmp_path / "adapter")
    out = tmp_path / "export"
    code = main(["export", "--adapter", str(adapter), "--output_dir", str(out), "--push_to_hub", "someone/tiny"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("trice export:")]
    assert code == 2 and len(err) == 1
    assert "push to someone/tiny failed" in err[0] and f"kept in {out}" in err[0]
    assert (out / "model.safetensors").is_file()
