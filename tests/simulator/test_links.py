"""GET rebate-per-orders and its file links as documented: 2 per minute, item fields, 2-hour object-store links."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from pipeline.clock import FakeClock, epoch_ms
from pipeline.domain import GENERATION_TIME, GET_WINDOW, LINK_VALIDITY, REBATE_PATH
from pipeline.okx.signing import okx_timestamp
from pipeline.simulator.files import FileSpec, build_rebate_file
from pipeline.simulator.options import ROTATE
from pipeline.simulator.server import RunningSimulator
from pipeline.simulator.state import SimAccount, SimulatorConfig
from tests.simulator.conftest import API_ONLY, SIM_START, SignedOkx, envelope

DOCS_EXAMPLE_DAY_MS = "1671638400000"
"""beginTime and endTime of the docs' `RebateDetails1222-1222` example: 2022-12-22 00:00 at UTC+8."""


def finished_item(okx: SignedOkx, clock: FakeClock, begin: str = "20221222", end: str = "20221222") -> dict[str, str]:
    """Create begin..end for api, wait out the generation, and return its GET item."""
    okx.create(begin, end)
    clock.advance(GENERATION_TIME)
    [item] = envelope(okx.links(type="false", begin=begin, end=end, brokerType="api"))[2]
    return item


def test_a_third_get_in_the_same_minute_is_429_50011(okx: SignedOkx, sim_clock: FakeClock) -> None:
    okx.links(type="true", brokerType="api")
    sim_clock.advance(30)
    okx.links(type="true", brokerType="api")
    sim_clock.advance(29)
    response = okx.links(type="true", brokerType="api")
    assert envelope(response)[:2] == (429, "50011")


def test_the_get_limit_is_a_rolling_minute_and_rejected_calls_do_not_count(
    okx: SignedOkx, sim_clock: FakeClock
) -> None:
    start = sim_clock.now()
    okx.links(type="true", brokerType="api")
    sim_clock.set(start + timedelta(seconds=30))
    okx.links(type="true", brokerType="api")
    sim_clock.set(start + timedelta(seconds=59))
    assert envelope(okx.links(type="true", brokerType="api"))[1] == "50011"
    sim_clock.set(start + GET_WINDOW)
    assert envelope(okx.links(type="true", brokerType="api"))[1] == "0"
    assert envelope(okx.links(type="true", brokerType="api"))[1] == "50011"
    sim_clock.set(start + timedelta(seconds=90))
    assert envelope(okx.links(type="true", brokerType="api"))[1] == "0"


def test_on_a_clock_shared_with_other_processes_a_get_counts_when_it_was_signed(sim_http: httpx.Client) -> None:
    """Another process's simulated wait may move the clock while a GET is in flight: it counts as sent, not as the
    minute-later arrival, and the call log keeps both times."""
    clock = FakeClock(SIM_START)
    config = SimulatorConfig(accounts=(API_ONLY,), check_timestamps=False)
    with RunningSimulator(config, clock=clock) as shared:
        okx = SignedOkx(shared.base_url, clock, API_ONLY, sim_http)
        sent = clock.now()
        stale = okx_timestamp(sent)
        assert [envelope(okx.links(type="true"))[1] for _ in range(2)] == ["0", "0"]
        clock.advance(GET_WINDOW)
        # Signed with the two others, arriving a minute later: the third GET of that minute.
        assert envelope(okx.request("GET", params={"type": "true"}, timestamp=stale))[1] == "50011"
        assert envelope(okx.links(type="true"))[1] == "0"  # sent a minute after the first two
        calls = shared.state.calls("GET", REBATE_PATH)
    assert [call.sent_at for call in calls] == [sent, sent, sent, sent + GET_WINDOW]
    assert [call.at for call in calls] == [sent, sent, sent + GET_WINDOW, sent + GET_WINDOW]


def test_type_true_lists_files_created_and_seeded_for_that_broker_type(
    okx: SignedOkx, sim: RunningSimulator, sim_clock: FakeClock
) -> None:
    okx.create("20250101", "20250131", "api")
    sim.state.seed_file("sim-api-key", "api", date(2024, 7, 1), date(2024, 12, 27), sim_clock.now() - timedelta(days=3))
    sim.state.seed_file("sim-api-key", "oauth", date(2024, 1, 1), date(2024, 1, 31))
    status, code, data = envelope(okx.links(type="true", brokerType="api"))
    assert (status, code) == (200, "0")
    spans = sorted((item["beginTime"], item["endTime"]) for item in data)
    day = 86_400_000
    assert len(spans) == 2
    assert [int(end) - int(begin) for begin, end in spans] == [179 * day, 30 * day]
    assert {item["state"] for item in data} == {"ongoing", "finished"}


def test_type_true_needs_a_broker_type_from_a_dual_broker(okx: SignedOkx) -> None:
    assert envelope(okx.links(type="true"))[:2] == (200, "50044")


def test_a_single_type_broker_lists_without_a_broker_type(signed_for: Callable[[SimAccount], SignedOkx]) -> None:
    api_only = signed_for(API_ONLY)
    api_only.create("20250101", "20250131", None)
    assert len(envelope(api_only.links(type="true"))[2]) == 1


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "50014"),
        ({"type": "maybe"}, "51000"),
        ({"type": "false", "end": "20250131"}, "50014"),
        ({"type": "false", "begin": "20250101"}, "50014"),
        ({"type": "false", "begin": "2025-01-01", "end": "20250131"}, "51000"),
        ({"type": "true", "brokerType": "retail"}, "51000"),
    ],
)
def test_missing_or_malformed_get_parameters_are_rejected(okx: SignedOkx, params: dict[str, str], code: str) -> None:
    assert envelope(okx.links(**{"brokerType": "api", **params}))[:2] == (400, code)


def test_type_false_answers_exactly_the_asked_range(okx: SignedOkx) -> None:
    okx.create("20250101", "20250131")
    assert len(envelope(okx.links(type="false", begin="20250101", end="20250131", brokerType="api"))[2]) == 1
    assert envelope(okx.links(type="false", begin="20250101", end="20250130", brokerType="api"))[2] == []


def test_a_range_never_requested_answers_empty_data(okx: SignedOkx) -> None:
    assert envelope(okx.links(type="false", begin="20240101", end="20240131", brokerType="api")) == (200, "0", [])


def test_a_new_file_is_ongoing_without_a_link_until_generation_ends(
    okx: SignedOkx, sim_clock: FakeClock, sim: RunningSimulator
) -> None:
    okx.create("20250101", "20250131")
    sim_clock.advance(sim.config.ready_after - timedelta(seconds=1))
    [ongoing] = envelope(okx.links(type="false", begin="20250101", end="20250131", brokerType="api"))[2]
    assert (ongoing["state"], ongoing["fileHref"]) == ("ongoing", "")
    sim_clock.advance(1)
    [finished] = envelope(okx.links(type="false", begin="20250101", end="20250131", brokerType="api"))[2]
    assert finished["state"] == "finished"
    assert finished["fileHref"].startswith(sim.base_url + "/files/")


def test_the_docs_example_range_has_their_begin_and_end_times(okx: SignedOkx, sim_clock: FakeClock) -> None:
    created_at = str(epoch_ms(sim_clock.now()))
    item = finished_item(okx, sim_clock)
    assert item["beginTime"] == item["endTime"] == DOCS_EXAMPLE_DAY_MS
    assert item["cTime"] == created_at
    assert item["ts"] == str(epoch_ms(sim_clock.now()))
    assert set(item) == {"fileHref", "beginTime", "endTime", "cTime", "ts", "state"}


def test_end_time_is_the_start_of_the_last_included_day(okx: SignedOkx, sim_clock: FakeClock) -> None:
    item = finished_item(okx, sim_clock, "20221201", "20221231")
    start_of_dec_31_utc8 = datetime(2022, 12, 30, 16, tzinfo=UTC)
    assert item["endTime"] == str(epoch_ms(start_of_dec_31_utc8))


def test_the_link_serves_the_file_with_its_length(
    okx: SignedOkx, sim_clock: FakeClock, sim_http: httpx.Client, sim: RunningSimulator
) -> None:
    item = finished_item(okx, sim_clock)
    response = sim_http.get(item["fileHref"])
    expected = build_rebate_file(FileSpec(begin=date(2022, 12, 22), end=date(2022, 12, 22), broker_type="api"))
    assert response.status_code == 200
    assert response.content == expected
    assert response.headers["content-length"] == str(len(expected))
    assert sim.state.count("GET", "/files", status=200) == 1


def test_the_link_looks_like_an_object_store_url(okx: SignedOkx, sim_clock: FakeClock) -> None:
    parts = urlsplit(finished_item(okx, sim_clock)["fileHref"])
    assert parts.path.endswith("/RebateDetails1222-1222.csv")
    query = parse_qs(parts.query)
    assert set(query) == {"Expires", "OSSAccessKeyId", "Signature"}
    assert int(query["Expires"][0]) == int((sim_clock.now() + LINK_VALIDITY).timestamp())


def test_a_link_works_for_two_hours_then_answers_403_xml(
    okx: SignedOkx, sim_clock: FakeClock, sim_http: httpx.Client
) -> None:
    href = finished_item(okx, sim_clock)["fileHref"]
    sim_clock.advance(LINK_VALIDITY)
    assert sim_http.get(href).status_code == 200
    sim_clock.advance(1)
    expired = sim_http.get(href)
    assert expired.status_code == 403
    assert expired.headers["content-type"].startswith("application/xml")
    assert expired.text.startswith("<?xml")
    assert "<Code>AccessDenied</Code><Message>Request has expired.</Message>" in expired.text


def test_every_get_hands_out_a_fresh_link(okx: SignedOkx, sim_clock: FakeClock, sim_http: httpx.Client) -> None:
    old = finished_item(okx, sim_clock)["fileHref"]
    sim_clock.advance(LINK_VALIDITY + timedelta(seconds=1))
    [item] = envelope(okx.links(type="false", begin="20221222", end="20221222", brokerType="api"))[2]
    assert item["fileHref"] != old
    assert sim_http.get(old).status_code == 403
    assert sim_http.get(item["fileHref"]).status_code == 200


@pytest.mark.parametrize(
    "tamper",
    [
        lambda href: href.replace("Expires=", "Expires=9"),
        lambda href: href.replace("Signature=", "Signature=A"),
        lambda href: href.replace("/files/", "/files/0"),
        lambda href: href.replace("RebateDetails1222", "RebateDetails1221"),
        lambda href: href.split("?")[0],
    ],
)
def test_a_tampered_link_answers_403(
    okx: SignedOkx, sim_clock: FakeClock, sim_http: httpx.Client, tamper: Callable[[str], str]
) -> None:
    href = finished_item(okx, sim_clock)["fileHref"]
    response = sim_http.get(tamper(href))
    assert response.status_code == 403
    assert "<Error><Code>" in response.text


def test_links_need_no_okx_headers_but_api_calls_do(okx: SignedOkx, sim_http: httpx.Client) -> None:
    assert sim_http.get(okx.base_url + REBATE_PATH, params={"type": "true"}).status_code == 401


MAGIC = {"xlsx": b"PK\x03\x04", "zip": b"PK\x03\x04", "xls": b"\xd0\xcf\x11\xe0"}


def test_rotated_shapes_are_served_under_their_real_extension() -> None:
    clock = FakeClock(SIM_START)
    config = SimulatorConfig(shape=ROTATE, orders_per_day=1)
    with RunningSimulator(config, clock=clock) as running, httpx.Client() as http:
        for month in range(1, 13):
            running.state.seed_file("sim-api-key", "api", date(2024, month, 1), date(2024, month, 28))
        okx = SignedOkx(base_url=running.base_url, clock=clock, account=running.config.accounts[0], http=http)
        hrefs = [item["fileHref"] for item in envelope(okx.links(type="true", brokerType="api"))[2]]
        served = {urlsplit(href).path.rsplit(".", 1)[1]: http.get(href).content for href in hrefs}
    assert len(hrefs) == 12
    assert {"csv", "xlsx", "xls", "zip"} <= set(served)
    for extension, content in served.items():
        if extension == "csv":
            assert not content.startswith((MAGIC["zip"], MAGIC["xls"]))
        else:
            assert content.startswith(MAGIC[extension])
