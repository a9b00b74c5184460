"""The test suite mirrors the package: tests/<package>/test_<module>.py tests trice/<package>/<module>.py
(tests/bench/ the scripts in bench/, tests/recipes/ the shipped recipe files). tests/e2e/ holds what
crosses stages or processes: whole `trice run`s, real models, the README, killed and launched processes.
Shared helpers are imported from tests/helpers/, fixture files read from tests/fixtures/, and the
fixtures every test gets live in tests/conftest.py."""
