"""The price catalog: defaults, units, overrides, and every bad input naming its line."""

from __future__ import annotations

import math
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import given

from modelyard.core.errors import InvalidInput
from modelyard.cost import catalog_path, default_catalog, load_catalog, parse_catalog
from modelyard.cost.prices import HOUR_S, MONTH_S, NUMBER_KEYS, PRICE_KEYS, plain_number

EUR_CATALOG = """\
currency = "EUR"

[provisioned]
cpu = "0.05 EUR per vCPU-hour"
memory = "0.005 EUR per GB-hour"
gpu = "1.2 EUR per GPU-hour"

[serverless]
request = "0.25 EUR per 1M requests"
compute = "0.00002 EUR per GB-second"

[storage]
artifacts = "0.025 EUR per GB-month"
"""


def parse(text: str) -> None:
    parse_catalog(text, "my.toml", default_catalog())


def test_default_catalog_rates_are_per_base_unit() -> None:
    catalog = default_catalog()
    assert catalog.currency == "USD"
    assert catalog.sources == ("default",)
    assert catalog.cpu_second == pytest.approx(0.04048 / HOUR_S)
    assert catalog.gib_second == pytest.approx(0.004445 / HOUR_S)
    assert catalog.gpu_second == pytest.approx(1.006 / HOUR_S)
    assert catalog.rate("serverless.request") == pytest.approx(0.20 / 1e6)
    assert catalog.rate("serverless.compute") == pytest.approx(0.0000166667)
    assert catalog.rate("storage.artifacts") == pytest.approx(0.023 / MONTH_S)
    assert catalog.spot_discount == 0.7
    assert catalog.number("serverless.max_concurrency") == 1000
    assert set(catalog.prices) == set(PRICE_KEYS)
    assert set(catalog.numbers) == set(NUMBER_KEYS)
    assert all(p.origin == "default" for p in catalog.prices.values())


def test_replica_second_adds_resources_and_takes_the_spot_discount() -> None:
    catalog = default_catalog()
    on_demand = catalog.replica_second(2, 4, 1)
    expected = 2 * catalog.cpu_second + 4 * catalog.gib_second + catalog.gpu_second
    assert on_demand == pytest.approx(expected)
    assert catalog.replica_second(2, 4, 1, spot=True) == pytest.approx(expected * 0.3)


def test_prices_print_as_written_not_in_exponent_form() -> None:
    catalog = default_catalog()
    assert catalog.prices["serverless.compute"].text("USD") == "0.0000166667 USD per GB-second"
    assert catalog.prices["provisioned.cpu"].text("USD") == "0.04048 USD per vCPU-hour"
    assert plain_number(2.0) == "2"
    assert plain_number(1e-12) == "0.000000000001"


@pytest.mark.parametrize(
    ("key", "unit", "base_units"),
    [
        ("provisioned.cpu", "vCPU-second", 1.0),
        ("provisioned.cpu", "vCPU-minute", 60.0),
        ("provisioned.cpu", "core-day", 86400.0),
        ("provisioned.cpu", "vCPU-month", MONTH_S),
        ("provisioned.memory", "MB-second", 1 / 1024),
        ("provisioned.memory", "GiB-hour", HOUR_S),
        ("provisioned.gpu", "GPU-hour", HOUR_S),
        ("serverless.request", "1k requests", 1e3),
        ("serverless.request", "request", 1.0),
        ("serverless.compute", "MiB-second", 1 / 1024),
        ("storage.artifacts", "TB-month", 1024 * MONTH_S),
        ("storage.artifacts", "GB-day", 86400.0),
    ],
)
def test_units_convert_to_the_base_unit(key: str, unit: str, base_units: float) -> None:
    section, name = key.split(".")
    catalog = parse_catalog(f'[{section}]\n{name} = "3 USD per {unit}"\n', "f.toml",
                            default_catalog())  # fmt: skip
    assert catalog.rate(key) == pytest.approx(3 / base_units)
    assert catalog.prices[key].origin == "f.toml:2"


@given(
    amount=st.floats(0, 1e6, allow_nan=False, allow_infinity=False),
    time=st.sampled_from(["second", "minute", "hour", "day", "month"]),
)
def test_a_price_round_trips_through_its_rate(amount: float, time: str) -> None:
    seconds = {"second": 1, "minute": 60, "hour": HOUR_S, "day": 86400, "month": MONTH_S}[time]
    text = f'[provisioned]\ncpu = "{amount!r} USD per vCPU-{time}"\n'
    rate = parse_catalog(text, "f.toml", default_catalog()).cpu_second
    assert rate >= 0
    assert math.isclose(rate * seconds, amount, rel_tol=1e-12, abs_tol=1e-300)


def test_a_partial_override_keeps_the_other_defaults(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(
        '# my prices\n\n[provisioned]\ncpu = "0.05 USD per vCPU-hour"\n\n'
        "[serverless]\nkeep_alive_s = 300\n",
        encoding="utf-8",
    )
    catalog = load_catalog(path)
    assert catalog.sources == ("default", str(path))
    assert catalog.cpu_second == pytest.approx(0.05 / HOUR_S)
    assert catalog.prices["provisioned.cpu"].origin == f"{path}:4"
    assert catalog.number("serverless.keep_alive_s") == 300
    assert catalog.numbers["serverless.keep_alive_s"].origin == f"{path}:7"
    assert catalog.prices["provisioned.memory"] == default_catalog().prices["provisioned.memory"]
    assert catalog.numbers["serverless.max_concurrency"].origin == "default"


def test_a_catalog_in_another_currency_must_give_every_price() -> None:
    with pytest.raises(InvalidInput, match=r"my.toml: missing provisioned\.memory.*give every"):
        parse('currency = "EUR"\n[provisioned]\ncpu = "0.05 EUR per vCPU-hour"\n')
    catalog = parse_catalog(EUR_CATALOG, "eur.toml", default_catalog())
    assert catalog.currency == "EUR"
    assert catalog.cpu_second == pytest.approx(0.05 / HOUR_S)
    assert catalog.spot_discount == 0.7  # limits are not money: they still come from the base
    assert catalog.to_json()["prices"]["provisioned.cpu"]["text"] == "0.05 EUR per vCPU-hour"


def test_lower_case_currency_codes_are_accepted() -> None:
    text = EUR_CATALOG.replace('currency = "EUR"', 'currency = "eur"').replace(" EUR ", " eur ")
    assert parse_catalog(text, "f.toml", default_catalog()).currency == "EUR"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('currency = "XYZ"\n', r"my.toml:1: unknown currency 'XYZ'"),
        ("currency = 5\n", r"my.toml:1: unknown currency 5"),
        ('\n[provisioned]\ncpu = "1 XYZ per vCPU-hour"\n', r"my.toml:3: .*unknown currency 'XYZ'"),
        (
            '[provisioned]\ncpu = "1 USD per vCPU-hour"\nmemory = "1 EUR per GB-hour"\n',
            r"my.toml:3: provisioned.memory is in EUR but the catalog is in USD",
        ),
        ('[provisioned]\ncpu = "1 USD per vCPU-fortnight"\n', r"my.toml:2: .*unknown unit"),
        ('[provisioned]\nmemory = "1 USD per vCPU-hour"\n', r"my.toml:2: .*unknown unit"),
        ('[storage]\nartifacts = "1 USD per GB-hour"\n', r"my.toml:2: .*unknown unit"),
        ('[serverless]\nrequest = "1 USD per call"\n', r"my.toml:2: .*unknown unit 'call'"),
        ('[provisioned]\ncpu = "-0.04 USD per vCPU-hour"\n', r"my.toml:2: .*must be >= 0"),
        ('[provisioned]\ncpu = "1e999 USD per vCPU-hour"\n', r"my.toml:2: .*must be >= 0"),
        ("[provisioned]\ncpu = 0.04\n", r"my.toml:2: provisioned.cpu must be a string like"),
        ('[provisioned]\ncpu = "cheap"\n', r"my.toml:2: provisioned.cpu: cannot read 'cheap'"),
        ("[provisioned]\nspot_discount = 1.5\n", r"my.toml:2: .*between 0 and 1"),
        ("[provisioned]\nspot_discount = -0.1\n", r"my.toml:2: .*between 0 and 1"),
        ("[serverless]\nmax_concurrency = true\n", r"my.toml:2: .*must be a number"),
        ("[serverless]\nmax_concurrency = 2.5\n", r"my.toml:2: .*must be a whole number"),
        ("[serverless]\nmax_execution_s = 0\n", r"my.toml:2: .*between"),
        (
            '\n\n[provisioned]\ntpu = "1 USD per GPU-hour"\n',
            r"my.toml:4: unknown key 'provisioned.tpu'",
        ),
        ("# comment\n[network]\negress = 1\n", r"my.toml:2: unknown entry 'network'"),
        ("provisioned = 5\n", r"my.toml:1: 'provisioned' must be a section"),
        ('provisioned.tpu = "1 USD per GPU-hour"\n', r"my.toml:1: unknown key 'provisioned.tpu'"),
        ("[provisioned]\ncpu = \n", r"my.toml:2: not valid TOML"),
        (
            '[provisioned]\ncpu = "1 USD per vCPU-hour"\ncpu = "2 USD per vCPU-hour"\n',
            r"my.toml:3: not valid TOML",
        ),
    ],
)
def test_bad_catalogs_name_the_file_and_line(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse(text)


def test_a_catalog_without_a_base_needs_its_currency_and_every_key() -> None:
    with pytest.raises(InvalidInput, match="give the catalog's currency"):
        parse_catalog('[provisioned]\ncpu = "1 USD per vCPU-hour"\n', "f.toml")
    with pytest.raises(InvalidInput, match=r"f.toml: missing .*provisioned.spot_discount"):
        parse_catalog(EUR_CATALOG, "f.toml")


def test_an_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read the price file"):
        load_catalog(tmp_path / "missing.toml")
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InvalidInput, match="cannot read the price file"):
        load_catalog(binary)


def test_catalog_path_prefers_the_configured_file(tmp_path: Path) -> None:
    assert catalog_path(tmp_path) is None
    (tmp_path / "prices.toml").write_text("", encoding="utf-8")
    assert catalog_path(tmp_path) == tmp_path / "prices.toml"
    assert catalog_path(tmp_path, "/etc/prices.toml") == Path("/etc/prices.toml")
    assert load_catalog(None) == default_catalog()


def test_to_json_names_every_price_and_limit() -> None:
    document = default_catalog().to_json()
    assert set(document) == {"currency", "sources", "prices", "numbers"}
    cpu = document["prices"]["provisioned.cpu"]
    assert set(cpu) == {"amount", "unit", "text", "rate", "per", "origin", "meaning"}
    assert cpu["per"] == "vCPU-second"
    assert set(document["numbers"]) == set(NUMBER_KEYS)
