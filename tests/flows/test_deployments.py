"""Deployments per account: `rebates serve` and `rebates deployments` agree; prefect.yaml is the one-account case."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # no stubs in the locked dev set
from prefect import Flow
from prefect.flows import load_flow_from_entrypoint
from typer.testing import CliRunner

from flows.deployments import deployment_specs, deployments_document
from flows.serve import deployments
from pipeline.cli import Exit, app

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def served(schedule_tz: str, accounts: tuple[str, ...]) -> dict[tuple[str | None, str], tuple[Any, ...]]:
    """What `rebates serve` registers: (flow, name) → schedules, parameters, concurrency, entrypoint."""
    found: dict[tuple[str | None, str], tuple[Any, ...]] = {}
    for deployment in deployments(schedule_tz, accounts):
        assert deployment.concurrency_options is not None
        found[(deployment.flow_name, deployment.name)] = (
            [(item.schedule.cron, item.schedule.timezone) for item in deployment.schedules or []],  # type: ignore[union-attr]
            deployment.parameters,
            deployment.concurrency_limit,
            deployment.concurrency_options.collision_strategy.value,
            deployment.entrypoint,
        )
    return found


def declared(document: dict[str, Any]) -> dict[tuple[str | None, str], tuple[Any, ...]]:
    """The same, from a prefect.yaml document (each entrypoint loaded to find its flow's name)."""
    found: dict[tuple[str | None, str], tuple[Any, ...]] = {}
    for entry in document["deployments"]:
        flow: Flow[..., Any] = load_flow_from_entrypoint(str(REPO / entry["entrypoint"]))
        path, _, function = entry["entrypoint"].partition(":")
        found[(flow.name, entry["name"])] = (
            [(item["cron"], item["timezone"]) for item in entry.get("schedules", [])],
            entry["parameters"],
            entry["concurrency_limit"]["limit"],
            entry["concurrency_limit"]["collision_strategy"],
            path.removesuffix(".py").replace("/", ".") + "." + function,
        )
    return found


def test_prefect_yaml_is_exactly_what_rebates_deployments_writes_for_one_account() -> None:
    in_repo = yaml.safe_load((REPO / "prefect.yaml").read_text())
    in_repo.pop("definitions")  # the anchors the hand-written file shares its pool and limit through
    assert deployments_document((), "Asia/Shanghai") == in_repo


def test_each_account_gets_its_own_hourly_sync_and_backfill_and_the_reports_cover_all() -> None:
    names = [(spec.flow_name, spec.name, spec.parameters.get("account")) for spec in deployment_specs(("eu", "asia"))]
    assert names == [
        ("sync-rebates", "hourly-eu", "eu"),
        ("backfill", "on-demand-eu", "eu"),
        ("sync-rebates", "hourly-asia", "asia"),
        ("backfill", "on-demand-asia", "asia"),
        ("build-reports", "daily", None),
        ("build-statements", "month-end", None),
    ]


@pytest.mark.parametrize("accounts", [(), ("eu", "asia")])
def test_rebates_serve_and_the_generated_yaml_declare_the_same_deployments(accounts: tuple[str, ...]) -> None:
    from_yaml = declared(deployments_document(accounts, "Etc/GMT-8"))
    assert from_yaml == served("Etc/GMT-8", accounts)
    for schedules, _, limit, strategy, _ in from_yaml.values():
        assert (limit, strategy) == (1, "CANCEL_NEW")  # one run at a time per deployment, so per account
        assert schedules in (
            [],
            [("5 * * * *", "Etc/GMT-8")],
            [("30 6 * * *", "Etc/GMT-8")],
            [("0 9 2 * *", "Etc/GMT-8")],
        )


def test_rebates_deployments_writes_the_accounts_yaml_without_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REBATES_ACCOUNTS", "eu,asia")
    monkeypatch.setenv("OKX_SECRET_KEY_EU", "secret-of-eu-never-written")
    monkeypatch.setenv("REBATES_TZ", "Asia/Shanghai")
    out = tmp_path / "prefect.accounts.yaml"
    result = runner.invoke(app, ["deployments", "--out", str(out), "--pool", "rebates-docker"])
    assert result.exit_code == 0, result.output
    assert f"prefect deploy --all --prefect-file {out}" in result.output
    text = out.read_text()
    assert "secret-of-eu-never-written" not in text
    document = yaml.safe_load(text)
    assert document == deployments_document(("eu", "asia"), "Asia/Shanghai", "rebates-docker")
    assert {entry["work_pool"]["name"] for entry in document["deployments"]} == {"rebates-docker"}
    printed = runner.invoke(app, ["deployments"])  # to stdout, on the default pool
    assert printed.exit_code == 0
    assert yaml.safe_load(printed.output) == deployments_document(("eu", "asia"), "Asia/Shanghai")


def test_a_timezone_without_an_iana_name_asks_for_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REBATES_TZ", "UTC+5:30")
    result = runner.invoke(app, ["deployments"])
    assert result.exit_code == Exit.CONFIG
    assert "--timezone" in result.output
    assert runner.invoke(app, ["deployments", "--timezone", "Asia/Kolkata"]).exit_code == 0


def test_image_volumes_and_env_go_into_the_file_and_a_secret_env_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "docker.yaml"
    options = ["--pool", "rebates-docker", "--image", "registry.example/okx-rebates:1", "--volume", "/mnt/d:/data"]
    result = runner.invoke(app, ["deployments", "--out", str(out), *options, "--env", "REBATES_DATA_DIR=/data"])
    assert result.exit_code == 0, result.output
    (entry, *_) = yaml.safe_load(out.read_text())["deployments"]
    assert entry["work_pool"] == {
        "name": "rebates-docker",
        "job_variables": {
            "env": {"PREFECT_LOGGING_EXTRA_LOGGERS": "pipeline", "REBATES_DATA_DIR": "/data"},
            "image": "registry.example/okx-rebates:1",
            "volumes": ["/mnt/d:/data"],
        },
    }
    for secret in ("OKX_SECRET_KEY_EU=sk-never-shown", "rebates_state_url=postgresql://u:pw9@h/d", "OKX_PASSPHRASE=p"):
        refused = runner.invoke(app, ["deployments", "--env", secret])
        assert refused.exit_code == Exit.CONFIG, secret
        assert "is a secret" in refused.output and "never-shown" not in refused.output and "pw9" not in refused.output
