"""The translator tool: prompt and parsing, bounds, the registry, each backend (a fake one, the local
LM path on the tiny model, an NLLB-shaped seq2seq model built offline, a fake OpenAI server), and
one slow test with the real Gemma model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trice.cli import main
from trice.generation.models import check_installed
from trice.tools.factories import build_registry
from trice.core.tools import ToolCall, ToolError, ToolRegistry, ToolSetupError
from trice.tools.translator import CHAT_INSTRUCTION, FEW_SHOT, GemmaBackend, Seq2SeqBackend, Translator, TranslatorConfig, few_shot_prompt, first_line

from tests.helpers.fake_servers import openai_reply, serve  # noqa: F401 - fixture


class Fake:
    """A backend that answers from a table and records what it was asked."""

    def __init__(self, table: dict[str, str]):
        self.table, self.asked = table, []

    def translate(self, texts):
        self.asked.append(list(texts))
        return [self.table.get(t, "") for t in texts]


def test_few_shot_prompt_and_first_line() -> None:
    prompt = few_shot_prompt("你好，\n世界", "Chinese")
    shots = "".join(f"{lang}: {src}\nEnglish: {en}\n\n" for lang, src, en in FEW_SHOT)
    assert prompt == shots + "Chinese: 你好， 世界\nEnglish:"
    assert prompt.count("English:") == len(FEW_SHOT) + 1
    assert first_line(" Hello, world.\nFrench: Bonjour") == "Hello, world."
    assert first_line("\n\n  Who?  \nmore") == "Who?"
    assert first_line("   \n") == ""


def test_translator_runs_and_bounds_its_argument() -> None:
    fake = Fake({"你好 世界": "Hello world"})
    tool = Translator(fake, max_input_chars=10)
    assert tool.run("  你好\n世界 ") == "Hello world"
    assert fake.asked == [["你好 世界"]]  # whitespace collapsed before the backend sees it
    with pytest.raises(ToolError, match="nothing to translate") as err:
        tool.run("   ")
    assert err.value.kind == "bad_argument"
    with pytest.raises(ToolError, match="longer than 10 characters") as err:
        tool.run("x" * 11)
    assert err.value.kind == "limit" and len(fake.asked) == 1  # refused before the backend
    with pytest.raises(ToolError, match="empty translation") as err:
        tool.run("unknown")
    assert err.value.kind == "runtime"


def test_translator_through_the_registry_never_raises() -> None:
    registry = ToolRegistry([Translator(Fake({"谁？": "Who?"}))])
    assert registry.run_text("I will use translator(谁？) now").output == "Who?"
    failed = registry.execute(ToolCall("translator", ""))
    assert not failed.ok and failed.error_kind == "bad_argument"


def test_translator_is_registered_and_loads_nothing_until_called() -> None:
    registry = build_registry(["translator"], translator={"source_language": "German", "model": "/no/such/model"})
    tool = registry._tools["translator"]
    assert isinstance(tool, Translator) and isinstance(tool.backend, GemmaBackend)
    assert tool.backend._model is None  # built, not loaded
    with pytest.raises(ToolSetupError, match="cannot load translator model"):  # the setup's failure, not the call's
        registry.run_text("translator(Wer bist du?)")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"backend": "argos"}, "backend must be one of"),
        ({"languge": "German"}, r"unknown option\(s\) \['languge'\]"),
        ({"max_input_chars": 0}, "max_input_chars must be >= 1"),
        ({"max_time": 0}, "max_time must be > 0"),
        ({"source_language": " "}, "source_language"),
        ({"backend": "endpoint"}, "needs endpoint="),
        ({"backend": "endpoint", "endpoint": {"model": "m", "colour": 1}}, r"unknown option\(s\) \['colour'\]"),
    ],
)
def test_translator_options_are_checked(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Translator.from_options(**options)


def test_gemma_backend_generation_path_on_the_tiny_model(tiny_model_dir: Path) -> None:
    """The local-LM path (batching, greedy, stop at newline, bounded tokens) on a random tiny model:
    what it says is noise, but every text gets one line of at most max_new_tokens tokens."""
    config = TranslatorConfig(model=str(tiny_model_dir), max_new_tokens=4, batch_size=2, source_language="German")
    backend = GemmaBackend(config)
    backend._load()
    generate, new_tokens = backend._model.generate, []

    def spy(**kwargs):
        output = generate(**kwargs)
        new_tokens.append(output.shape[1] - kwargs["input_ids"].shape[1])
        return output

    backend._model.generate = spy
    out = backend.translate(["Wer bist du?", "Wo?", "Was ist das hier?"])
    assert len(out) == 3 and all(isinstance(t, str) and "\n" not in t for t in out)
    assert len(new_tokens) == 2 and max(new_tokens) <= 4  # two batches, bounded


def _tiny_nllb(out_dir: Path) -> Path:
    """An NLLB-shaped seq2seq model (M2M100 architecture, NLLB tokenizer with language codes), random
    and tiny, built offline."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import M2M100Config, M2M100ForConditionalGeneration, NllbTokenizerFast

    words = ["<s>", "<pad>", "</s>", "<unk>", "hallo", "welt", "zho_Hans", "eng_Latn", "deu_Latn"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    NllbTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        additional_special_tokens=["zho_Hans", "eng_Latn", "deu_Latn"],
    ).save_pretrained(out_dir)
    torch.manual_seed(0)
    config = M2M100Config(
        vocab_size=len(words),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=64,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
    )
    M2M100ForConditionalGeneration(config).save_pretrained(out_dir)
    return out_dir


def test_seq2seq_backend_sets_source_and_forces_the_target_language(tmp_path: Path) -> None:
    config = TranslatorConfig(backend="hf", model=str(_tiny_nllb(tmp_path)), src_lang="deu_Latn", max_new_tokens=3)
    backend = Seq2SeqBackend(config)
    backend._load()
    tok = backend._tokenizer
    seen = {}
    generate = backend._model.generate

    def spy(**kwargs):
        seen["input_ids"] = kwargs["input_ids"]
        seen["output"] = generate(**kwargs)
        return seen["output"]

    backend._model.generate = spy
    out = backend.translate(["hallo welt", "hallo"])
    assert len(out) == 2 and all(isinstance(t, str) for t in out)
    src, tgt = tok.convert_tokens_to_ids("deu_Latn"), tok.convert_tokens_to_ids("eng_Latn")
    assert (seen["input_ids"] == src).sum(dim=1).tolist() == [1, 1]  # each text tagged with its language
    assert seen["output"][:, 1].tolist() == [tgt, tgt]  # decoding starts in English
    assert seen["output"].shape[1] <= 1 + 3


def test_evaluate_stops_with_one_line_when_the_translator_cannot_load(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("TRICE_CACHE_DIR", str(tmp_path / "cache"))
    rows = tmp_path / "responses.jsonl"
    rows.write_text(
        json.dumps({"id": "x1", "dataset": "xquad-zh", "task": "mlqa", "question": "谁？", "answers": ["Bob"], "response": "translator(谁？)"}) + "\n"
    )
    out = tmp_path / "judged.jsonl"
    code = main(["evaluate", "--task", "mlqa", "--input", str(rows), "--output", str(out), "--tools", "{translator: {model: /no/such/model}}"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.count("trice evaluate: error:") == 1 and "trice evaluate: error: cannot load translator model '/no/such/model'" in err
    assert not out.exists() or out.read_text() == ""  # no row judged wrong for the machine's setup


def test_seq2seq_backend_without_the_model_stops_the_run(tmp_path: Path) -> None:
    tool = Translator.from_options(backend="hf", model=str(tmp_path / "missing"))
    with pytest.raises(ToolSetupError, match="cannot load MT model"):
        ToolRegistry([tool]).run_text("translator(hallo)")


# --- endpoint backend against fake OpenAI-compatible servers on 127.0.0.1 ------------------------


def _endpoint_tool(url: str, **endpoint: object) -> Translator:
    options = {"base_url": url, "model": "mt", "max_retries": 0, "backoff_initial": 0.0} | endpoint
    return Translator.from_options(backend="endpoint", source_language="German", endpoint=options)


def test_endpoint_backend_completions_mode(serve) -> None:  # noqa: F811
    server = serve(lambda hit, path, req: openai_reply(path, req, " Who are you?\nFrench: Qui es-tu ?"))
    tool = _endpoint_tool(server.url, mode="completions")
    assert tool.run("Wer bist du?") == "Who are you?"
    path, _, request = server.requests[0]
    assert path.endswith("/completions") and not path.endswith("/chat/completions")
    assert request["prompt"] == few_shot_prompt("Wer bist du?", "German")
    assert request["stop"] == ["\n"] and request["temperature"] == 0 and request["max_tokens"] == 96


def test_endpoint_backend_chat_mode(serve) -> None:  # noqa: F811
    server = serve(lambda hit, path, req: openai_reply(path, req, "Who are you?"))
    assert _endpoint_tool(server.url).run("Wer  bist du?") == "Who are you?"
    _, _, request = server.requests[0]
    expected = CHAT_INSTRUCTION.format(language="German", text="Wer bist du?")
    assert request["messages"] == [{"role": "user", "content": expected}] and "stop" not in request


def test_endpoint_backend_failures_are_typed_tool_errors(serve) -> None:  # noqa: F811
    failing = serve(lambda hit, path, req: (500, b'{"error": "boom"}', "application/json"))
    result = ToolRegistry([_endpoint_tool(failing.url)]).run_text("translator(hallo)")
    assert not result.ok and result.error_kind == "unavailable" and "HTTP 500" in result.error and "translator: " in result.error
    hanging = serve(lambda hit, path, req: None)
    result = ToolRegistry([_endpoint_tool(hanging.url, read_timeout=0.3)]).run_text("translator(hallo)")
    assert not result.ok and result.error_kind == "timeout"
    malformed = serve(lambda hit, path, req: (200, json.dumps({"choices": []}).encode(), "application/json"))
    result = ToolRegistry([_endpoint_tool(malformed.url)]).run_text("translator(hallo)")
    assert not result.ok and result.error_kind == "runtime"


# --- the real offline model ----------------------------------------------------------------------


@pytest.mark.slow
def test_real_gemma_translates_a_sentence() -> None:
    """Gemma-3-270M (converted once to the trice cache, about a minute and a half) translates a
    simple Chinese question well enough to name its subject."""
    try:
        check_installed("gemma3-270m")
    except FileNotFoundError as err:
        pytest.skip(str(err))
    registry = build_registry(["translator"], translator={"source_language": "Chinese"})
    result = registry.run_text("translator(谁发明了电话？)")
    assert result.ok, result.error
    assert "telephone" in result.output.lower() and "\n" not in result.output
