"""A stage's failures: which rows failed, and the one line that says what to do next."""

from __future__ import annotations

import pytest

from trice.pipeline.failures import FailedRows, ToolOutages, raise_failed_rows


def test_failed_rows_are_found_in_a_field_or_a_list_of_them() -> None:
    raise_failed_rows([{"id": "a"}, {"id": "b", "error": None}])  # no error set: nothing raised
    raise_failed_rows([{"id": "a", "errors": [None, None]}], "errors")
    with pytest.raises(FailedRows, match=r"^1 of 1 rows failed \(first: timeout: slow\)$"):
        raise_failed_rows([{"id": "a", "errors": [None, "timeout: slow"]}], "errors")


def test_outages_name_their_own_way_out() -> None:
    outages = ToolOutages(3, 20, "q7: unavailable: WikiSearch: down")
    assert str(outages) == "3 of 20 rows met a tool outage (first: q7: unavailable: WikiSearch: down)"
    assert "--accept-outages" in outages.then and "--accept-outages" not in FailedRows(1, 2, "x").then
