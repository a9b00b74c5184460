"""Math loaders: the GSM8K step composer, SVAMP/ASDiv normalisation, seeded splits, located errors
on broken files, and the real data's counts and reference calls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trice.data.math import (
    MATH_LOADERS,
    asdiv_tool_call,
    compose_gsm8k_steps,
    describe,
    describe_splits,
    format_number,
    gsm8k_final_answer,
    join_question,
    load_asdiv,
    load_gsm8k,
    load_math,
    load_svamp,
    parse_asdiv_answer,
    svamp_tool_call,
    tidy_expression,
)
from trice.utils.io import DataError

NATALIA = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72"


# --- GSM8K composer ----------------------------------------------------------------------------


def test_compose_natalia() -> None:
    assert compose_gsm8k_steps(NATALIA) == "48+48/2"


def test_compose_reuses_a_step_twice_and_keeps_needed_parens() -> None:
    text = "<<3+4=7>>7 then <<7*7=49>>49 then <<100-49=51>>51\n#### 51"
    assert compose_gsm8k_steps(text) == "100-(3+4)*(3+4)"


def test_compose_prefers_the_most_recent_step_with_a_value() -> None:
    text = "<<2*5=10>> <<20/2=10>> <<10+1=11>>\n#### 11"
    assert compose_gsm8k_steps(text) == "20/2+1"


def test_final_answer_with_thousands_commas() -> None:
    text = "<<500*2=1000>>1,000\n#### 1,000"
    assert gsm8k_final_answer(text) == "1000"
    assert compose_gsm8k_steps(text) == "500*2"


def test_compose_uses_latest_step_reaching_gold_when_the_last_one_does_not() -> None:
    text = "<<6*7=42>>42 toys; check <<42-40=2>>2 left over\n#### 42"
    assert compose_gsm8k_steps(text) == "6*7"


def test_compose_gives_none_without_a_route_to_gold() -> None:
    assert compose_gsm8k_steps("<<2+2=4>>4 and 20/4 = 5\n#### 5") is None
    assert compose_gsm8k_steps("no annotations here\n#### 5") is None
    assert compose_gsm8k_steps("<<2+2=4>>4 but no final line") is None
    assert compose_gsm8k_steps("<<560//10=56>>56\n#### 56") is None  # floor division is not plain arithmetic


def test_compose_refuses_overlong_expressions() -> None:
    steps = "".join(f"<<{i}+{i}={2 * i}>>" for i in range(1, 200))
    total = sum(2 * i for i in range(1, 200))
    long_sum = "+".join(str(2 * i) for i in range(1, 200))
    assert compose_gsm8k_steps(f"{steps}<<{long_sum}={total}>>\n#### {total}") is None


@pytest.mark.parametrize("text", ["no hashes", "#### seventy"])
def test_final_answer_errors(text: str) -> None:
    with pytest.raises(ValueError):
        gsm8k_final_answer(text)


# --- expressions, SVAMP, ASDiv -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "tidy"),
    [
        ("( 76.0 - 25.0 )", "76-25"),
        ("( ( 8.0 + 5.0 ) * 2.0 )", "(8+5)*2"),
        ("( 10.0 - ( 3.0 + 2.0 ) )", "10-(3+2)"),
        ("( 12.0 / ( 2.0 * 3.0 ) )", "12/(2*3)"),
        ("1,200.50 * .5", "1200.5*0.5"),
        ("-(3)", "-3"),
        ("x+1", None),
        ("2(3)", None),
        ("2**3", None),
        ("(1+2", None),
    ],
)
def test_tidy_expression(raw: str, tidy: str | None) -> None:
    assert tidy_expression(raw) == tidy


def test_svamp_equation_and_answer_format() -> None:
    assert svamp_tool_call("( 76.0 - 25.0 )") == "calculator(76-25)"
    assert svamp_tool_call("( 2.5 * 4.0 )") == "calculator(2.5*4)"
    assert [format_number(x) for x in (51.0, 0.5, 2.25, 1200.0)] == ["51", "0.5", "2.25", "1200"]


def test_join_question_adds_missing_full_stop() -> None:
    assert join_question("If there are 692 girls ", " How many  boys?") == "If there are 692 girls. How many boys?"
    assert join_question("Tom has 3.", "How many?") == "Tom has 3. How many?"


@pytest.mark.parametrize(
    ("answer", "number"),
    [
        ("9 (apples)", "9"),
        ("14  (seats)", "14"),
        ("1,200 (dollars)", "1200"),
        ("0.59 (dollar)", "0.59"),
        ("383", "383"),
        ("2:3", None),
        ("5:45", None),
        ("5 (cm); 3 (cm)", None),
        ("11; 12; 13", None),
        ("5/2", None),
        ("-(1/3)", None),
        ("Yes", None),
        ("The 60th caller.", None),
    ],
)
def test_parse_asdiv_answer(answer: str, number: str | None) -> None:
    assert parse_asdiv_answer(answer) == number


@pytest.mark.parametrize(
    ("formula", "gold", "call"),
    [
        ("7+2=9", "9", "calculator(7+2)"),
        ("7+2=10", "9", None),  # the formula's result disagrees with the answer
        ("1.3 (dollar)*100 (cent/dollar)/5 (cent/nickel) = 26 (nickel)", "26", "calculator(1.3*100/5)"),
        ("1.80+1.40=3.2; 2.75+6.70+1.70=11.15; 11.15-3.2=7.95", "7.95", "calculator(2.75+6.7+1.7-(1.8+1.4))"),
        ("47/6=7 r5", "7", None),
        ("95/6=15 r5; 5/5=1", "1", None),
        ("GCD(15,9,18)=3", "3", None),
        ("(24/4)^2=36", "36", None),
        ("x:The number; x+15=96", "81", None),
        ("", "3", None),
    ],
)
def test_asdiv_tool_call(formula: str, gold: str, call: str | None) -> None:
    assert asdiv_tool_call(formula, gold) == call


# --- tiny files ----------------------------------------------------------------------------------


def _svamp_record(i: int) -> dict:
    return {
        "ID": f"chal-{i}",
        "Body": f"Tom has {i} apples",
        "Question": "How many?",
        "Equation": f"( {i}.0 + 1.0 )",
        "Answer": float(i + 1),
        "Type": "Addition",
    }


def _write_svamp(root: Path, records: list) -> Path:
    path = root / "svamp" / "SVAMP.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, indent=4), encoding="utf-8")
    return path


def _split_ids(data) -> tuple[list[str], list[str]]:
    return sorted(e.id for e in data.train), sorted(e.id for e in data.test)


def test_seeded_split_is_deterministic_order_free_and_disjoint(tmp_path: Path) -> None:
    records = [_svamp_record(i) for i in range(60)]
    _write_svamp(tmp_path / "a", records)
    _write_svamp(tmp_path / "b", records[::-1])
    first = load_svamp(tmp_path / "a", seed=3)
    assert _split_ids(first) == _split_ids(load_svamp(tmp_path / "a", seed=3))
    assert _split_ids(first) == _split_ids(load_svamp(tmp_path / "b", seed=3))
    train, test = _split_ids(first)
    assert not set(train) & set(test) and len(train) + len(test) == 60
    assert test and train
    assert _split_ids(load_svamp(tmp_path / "a", seed=4)) != _split_ids(first)
    assert {e.split for e in first.train} == {"train"} and {e.split for e in first.test} == {"test"}
    assert first.split_method == "seeded hash split, test_fraction=0.3, seed=3"


def test_svamp_example_fields(tmp_path: Path) -> None:
    _write_svamp(tmp_path, [_svamp_record(5)])
    (example,) = load_svamp(tmp_path, test_fraction=0.0).train
    assert example.id == "svamp-chal-5" and example.task == "math" and example.dataset == "svamp"
    assert example.question == "Tom has 5 apples. How many?"
    assert example.answers == ("6",) and example.tool_call == "calculator(5+1)"


def test_svamp_missing_equation_names_file_line_record_and_field(tmp_path: Path) -> None:
    bad = _svamp_record(2)
    del bad["Equation"]
    path = _write_svamp(tmp_path, [_svamp_record(1), bad])
    with pytest.raises(DataError) as err:
        load_svamp(tmp_path)
    assert str(err.value) == f"{path}:10: field 'Equation': missing (record 2)"


def test_svamp_malformed_json(tmp_path: Path) -> None:
    path = tmp_path / "svamp" / "SVAMP.json"
    path.parent.mkdir()
    path.write_text('[\n{"ID": "a",\n "Body": }\n]', encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{path}:3: malformed JSON"):
        load_svamp(tmp_path)


def _write_gsm8k(root: Path, train: str, test: str = '{"question": "q", "answer": "<<1+1=2>>2\\n#### 2"}\n') -> Path:
    (root / "gsm8k").mkdir(parents=True, exist_ok=True)
    (root / "gsm8k" / "test.jsonl").write_text(test, encoding="utf-8")
    path = root / "gsm8k" / "train.jsonl"
    path.write_bytes(train.encode("utf-8") if isinstance(train, str) else train)
    return path


GOOD_LINE = json.dumps({"question": "Natalia sold clips?", "answer": NATALIA}) + "\n"


def test_gsm8k_loads_official_split(tmp_path: Path) -> None:
    _write_gsm8k(tmp_path, GOOD_LINE + "\n" + GOOD_LINE)
    data = load_gsm8k(tmp_path)
    assert [e.id for e in data.train] == ["gsm8k-train-0", "gsm8k-train-1"]
    assert data.train[0].answers == ("72",) and data.train[0].tool_call == "calculator(48+48/2)"
    assert [e.id for e in data.test] == ["gsm8k-test-0"] and data.test[0].split == "test"
    assert data.split_method == "official"


@pytest.mark.parametrize(
    ("line2", "expected"),
    [
        (b'{"question": "q", "answer": \n', ":2: malformed JSON"),
        (b'{"question": "q"}\n', ":2: field 'answer': missing"),
        (b'{"question": "q", "answer": 7}\n', ":2: field 'answer': expected string"),
        (b'{"question": "q", "answer": "no final line"}\n', ":2: field 'answer': no final '#### <number>' line"),
        (b'{"question": "caf\xe9", "answer": "#### 1"}\n', ":2: not UTF-8"),
    ],
)
def test_gsm8k_bad_line_is_located(tmp_path: Path, line2: bytes, expected: str) -> None:
    path = _write_gsm8k(tmp_path, GOOD_LINE.encode() + line2)
    with pytest.raises(DataError) as err:
        load_gsm8k(tmp_path)
    assert str(err.value).startswith(f"{path}{expected}")


def test_gsm8k_error_line_counts_blank_lines(tmp_path: Path) -> None:
    path = _write_gsm8k(tmp_path, GOOD_LINE + "\n\n" + '{"question": "q", "answer": "x"}\n')
    with pytest.raises(DataError, match=rf"^{path}:4: field 'answer'"):
        load_gsm8k(tmp_path)


def test_gsm8k_empty_file(tmp_path: Path) -> None:
    path = _write_gsm8k(tmp_path, "")
    with pytest.raises(DataError, match=rf"^{path}: empty file"):
        load_gsm8k(tmp_path)


def test_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "gsm8k" / "train.jsonl")):
        load_gsm8k(tmp_path)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "asdiv" / "ASDiv.xml")):
        load_asdiv(tmp_path)


ASDIV_XML = """<?xml version="1.0" encoding="UTF-8" ?>
<Machine-Reading-Corpus-File>
<ProblemSet>
\t<Problem ID="nluds-0001" Grade="1" Source="x">
\t\t<Body>Seven red apples and two green apples are in the basket.</Body>
\t\t<Question>How many apples are in the basket?</Question>
\t\t<Solution-Type>Addition</Solution-Type>
\t\t<Answer>9 (apples)</Answer>
\t\t<Formula>7+2=9</Formula>
\t</Problem>
\t<Problem ID="nluds-0002" Grade="1" Source="x">
\t\t<Body>Tom has 3 red and 4 blue marbles.</Body>
\t\t<Question>What is the ratio of red to blue?</Question>
\t\t<Answer>3:4</Answer>
\t\t<Formula>3:4=3:4</Formula>
\t</Problem>
\t<Problem ID="nluds-0003" Grade="1" Source="x">
\t\t<Body>A &amp; B have 1,000 dollars</Body>
\t\t<Question>How much?</Question>
\t\t<Answer>1,000 (dollars)</Answer>
\t\t<Formula>500*2=1000</Formula>
\t</Problem>
</ProblemSet>
</Machine-Reading-Corpus-File>
"""


def _write_asdiv(root: Path, text: str | bytes) -> Path:
    path = root / "asdiv" / "ASDiv.xml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def test_asdiv_loads_numeric_problems_and_counts_the_rest(tmp_path: Path) -> None:
    _write_asdiv(tmp_path, ASDIV_XML)
    data = load_asdiv(tmp_path, test_fraction=0.0)
    assert data.skipped == 1 and data.test == []
    first, third = data.train
    assert first.id == "asdiv-nluds-0001" and first.answers == ("9",) and first.tool_call == "calculator(7+2)"
    assert first.question == ("Seven red apples and two green apples are in the basket. How many apples are in the basket?")
    assert third.question == "A & B have 1,000 dollars. How much?" and third.answers == ("1000",)


def test_asdiv_subset_a_uses_fold_ids(tmp_path: Path) -> None:
    _write_asdiv(tmp_path, ASDIV_XML)
    folds = tmp_path / "asdiv" / "nfolds" / "asdiv-a"
    folds.mkdir(parents=True)
    (folds / "fold0.txt").write_text("nluds-0003\nnluds-0002\n", encoding="utf-8")
    data = load_asdiv(tmp_path, subset="a", test_fraction=0.0)
    assert [e.id for e in data.train] == ["asdiv-a-nluds-0003"] and data.skipped == 1
    assert {e.dataset for e in data.train} == {"asdiv-a"} and MATH_LOADERS["asdiv-a"](tmp_path, test_fraction=0.0) == data
    with pytest.raises(ValueError, match="unknown ASDiv subset"):
        load_asdiv(tmp_path, subset="b")


def test_asdiv_broken_xml_is_located(tmp_path: Path) -> None:
    path = _write_asdiv(tmp_path, ASDIV_XML.replace("</Body>", "</Bdy>", 1))
    with pytest.raises(DataError, match=rf"^{path}:5: malformed XML \(mismatched tag"):
        load_asdiv(tmp_path)


def test_asdiv_non_utf8_is_located(tmp_path: Path) -> None:
    path = _write_asdiv(tmp_path, ASDIV_XML.encode("utf-8").replace(b"Tom", b"T\xf6m"))
    with pytest.raises(DataError, match=rf"^{path}:12: malformed XML"):
        load_asdiv(tmp_path)


def test_asdiv_missing_answer_names_line_and_field(tmp_path: Path) -> None:
    path = _write_asdiv(tmp_path, ASDIV_XML.replace("\t\t<Answer>1,000 (dollars)</Answer>\n", ""))
    with pytest.raises(DataError, match=rf"^{path}:17: field 'Answer': missing$"):
        load_asdiv(tmp_path)


def test_asdiv_empty_file(tmp_path: Path) -> None:
    path = _write_asdiv(tmp_path, "")
    with pytest.raises(DataError, match=rf"^{path}:1: malformed XML \(no element found"):
        load_asdiv(tmp_path)


def test_load_math_rejects_unknown_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown math dataset"):
        load_math(tmp_path, datasets=("gsm9k",))
    with pytest.raises(ValueError, match="unknown split"):
        load_math(tmp_path, split="dev")


# --- real data ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real(data_dir: Path) -> dict:
    return {name: loader(data_dir) for name, loader in MATH_LOADERS.items()}


def test_real_counts(real: dict, data_dir: Path) -> None:
    assert (len(real["gsm8k"].train), len(real["gsm8k"].test)) == (7473, 1319)
    assert len(real["svamp"].train) + len(real["svamp"].test) == 1000
    asdiv = real["asdiv"]
    assert len(asdiv.train) + len(asdiv.test) + asdiv.skipped == 2305
    asdiv_a = real["asdiv-a"]
    assert len(asdiv_a.train) + len(asdiv_a.test) + asdiv_a.skipped == 1218  # the paper's 952 + 266
    full_test = {e.id for e in asdiv.test}  # a question's side of the split does not depend on the subset
    assert all(e.id.replace("asdiv-a-", "asdiv-", 1) in full_test for e in asdiv_a.test)
    for data in real.values():
        ids = [e.id for e in data.train + data.test]
        assert len(ids) == len(set(ids))


def test_real_reference_calls_cover_most_problems(real: dict) -> None:
    """Coverage floors a composer change must not fall below (measured: 93.8%, 100%, 76%)."""
    for name, floor in (("gsm8k", 0.92), ("svamp", 0.99), ("asdiv", 0.7)):
        examples = real[name].train
        assert sum(e.tool_call is not None for e in examples) / len(examples) > floor, name


def test_real_reference_calls_compute_the_gold_answer(real: dict) -> None:
    """Run every reference call through the real calculator: a call that misses the gold answer
    would teach the model a wrong use of the tool. The known misses are data quirks: one SVAMP
    answer disagrees with its own equation, and a few ASDiv answers are rounded to one decimal."""
    calculator = pytest.importorskip("trice.tools.calculator")
    run = calculator.Calculator().run
    for name, max_misses in (("gsm8k", 0), ("svamp", 1), ("asdiv", 8)):
        misses = [
            e.id
            for e in real[name].train + real[name].test
            if e.tool_call is not None and abs(float(run(e.tool_call[len("calculator(") : -1])) - float(e.answers[0])) > 1e-6
        ]
        assert len(misses) <= max_misses, (name, misses[:5])


def test_real_load_math_and_describe(data_dir: Path, real: dict) -> None:
    test = load_math(data_dir, datasets=("svamp", "asdiv"), split="test")
    assert len(test) == len(real["svamp"].test) + len(real["asdiv"].test) and {e.split for e in test} == {"test"}
    assert describe_splits(data_dir, datasets=("svamp",)) == describe({"svamp": real["svamp"]})
    summary = describe(real)
    assert summary["gsm8k"]["split"] == "official" and summary["gsm8k"]["test"] == 1319
    assert summary["svamp"]["split"] == "seeded hash split, test_fraction=0.3, seed=0"
    assert summary["asdiv"]["train"] + summary["asdiv"]["test"] + summary["asdiv"]["skipped"] == 2305
    assert summary["gsm8k"]["with_tool_call"]["train"] == sum(e.tool_call is not None for e in real["gsm8k"].train)
