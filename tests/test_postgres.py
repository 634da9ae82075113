"""The throwaway PostgreSQL the shared-state tests run against: where it is missing, those tests fail, not skip."""

from __future__ import annotations

import pytest

import tests.postgres
from tests.postgres import WITHOUT_POSTGRES_VARIABLE, server_binaries


@pytest.mark.parametrize(
    ("variables", "outcome"),
    [
        ({}, pytest.fail.Exception),
        ({"CI": "true"}, pytest.fail.Exception),
        ({WITHOUT_POSTGRES_VARIABLE: "1"}, pytest.skip.Exception),
        ({WITHOUT_POSTGRES_VARIABLE: "1", "CI": "true"}, pytest.fail.Exception),  # CI tests PostgreSQL, always
    ],
)
def test_a_machine_without_postgresql_fails_its_tests_unless_it_opts_out_outside_ci(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], outcome: type[BaseException]
) -> None:
    monkeypatch.setattr(tests.postgres, "bindir", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv(WITHOUT_POSTGRES_VARIABLE, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(outcome, match="make postgres"):
        server_binaries()
