"""The price catalog: what a vCPU, a GB of memory, a GPU, a serverless request and a
stored byte cost, read from a TOML data file the user can override.

Prices are written ``"<amount> <CURRENCY> per <unit>"`` (``"0.04048 USD per
vCPU-hour"``); each is kept as written and as a rate per *base unit*, which is what the
ledger and the estimator multiply by:

========================  ======================================  ===============
key                       units accepted                          base unit
========================  ======================================  ===============
``provisioned.cpu``       vCPU-second/-minute/-hour/-day/-month   vCPU-second
``provisioned.memory``    GB-/GiB-/MB-/MiB-second … -month        GiB-second
``provisioned.gpu``       GPU-second/-minute/-hour/-day/-month    GPU-second
``serverless.request``    request, 1k requests, 1M requests       request
``serverless.compute``    GB-/GiB-/MB-/MiB-second … -hour         GiB-second
``storage.artifacts``     GB-/GiB-/MB-/MiB-/TB-/TiB-month, -day   GiB-second
========================  ======================================  ===============

Conventions, as cloud price lists use them: GB and GiB are the same (2**30 bytes; MB and
MiB 2**20, TB and TiB 2**40); a month is 730 hours. Everything here is pure: no
environment is read (:func:`catalog_path` takes the settings' values as arguments).
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from modelyard.core.errors import InvalidInput

HOUR_S = 3600.0
MONTH_S = 730 * HOUR_S
GIB = float(1 << 30)

#: ISO 4217 codes a catalog may use (the common ones; the catalog converts nothing).
_CODES = "USD EUR GBP JPY CNY INR CAD AUD CHF SEK NOK DKK PLN CZK HUF BRL MXN KRW SGD HKD NZD ZAR"
CURRENCIES = frozenset((_CODES + " TRY ILS AED SAR TWD THB IDR MYR PHP VND").split(" "))

_SECONDS = {
    "second": 1.0,
    "s": 1.0,
    "minute": 60.0,
    "min": 60.0,
    "hour": HOUR_S,
    "h": HOUR_S,
    "hr": HOUR_S,
    "day": 86400.0,
    "month": MONTH_S,
    "mo": MONTH_S,
}
_BYTES_GIB = {"mb": 1 / 1024, "mib": 1 / 1024, "gb": 1.0, "gib": 1.0, "tb": 1024.0, "tib": 1024.0}
_REQUESTS = {"request": 1.0, "requests": 1.0, "1k requests": 1e3, "1m requests": 1e6}


@dataclass(frozen=True)
class _Kind:
    """How one key's unit is read: the quantity before ``-<time>`` and which times."""

    quantity: Mapping[str, float]
    base: str
    examples: str
    times: tuple[str, ...] = tuple(_SECONDS)


_CPU = _Kind({"vcpu": 1.0, "cpu": 1.0, "core": 1.0}, "vCPU-second", "vCPU-hour, vCPU-second")
_GPU = _Kind({"gpu": 1.0}, "GPU-second", "GPU-hour, GPU-second")
_MEM = _Kind(_BYTES_GIB, "GiB-second", "GB-hour, GiB-hour, GB-second, MB-second")
_STORE = _Kind(_BYTES_GIB, "GiB-second", "GB-month, GiB-month, TB-month", ("day", "month", "mo"))

#: Every price key, the kind of unit it takes and what it means.
PRICE_KEYS: Mapping[str, tuple[_Kind | None, str]] = {
    "provisioned.cpu": (_CPU, "a replica's requested vCPU, while it runs"),
    "provisioned.memory": (_MEM, "a replica's requested memory, while it runs"),
    "provisioned.gpu": (_GPU, "a replica's requested GPU, while it runs"),
    "serverless.request": (None, "each serverless invocation"),
    "serverless.compute": (_MEM, "serverless memory x billed duration"),
    "storage.artifacts": (_STORE, "bytes kept in the artifact store"),
}
#: The plain numbers a catalog holds (section.key → (low, high, meaning)).
NUMBER_KEYS: Mapping[str, tuple[float, float, str]] = {
    "provisioned.spot_discount": (0.0, 1.0, "fraction off provisioned prices on spot capacity"),
    "serverless.max_concurrency": (1.0, 1e7, "concurrent invocations before throttling"),
    "serverless.max_execution_s": (0.001, 86400.0, "an invocation's time limit, seconds"),
    "serverless.cold_start_s": (0.0, 3600.0, "start-up time of a new instance, seconds"),
    "serverless.keep_alive_s": (0.0, 86400.0, "how long an idle instance stays warm, seconds"),
    "runs.cpu": (0.0, 1e5, "vCPU a run is billed for, unless tagged cost.cpu"),
    "runs.memory_gb": (0.0, 1e6, "GB a run is billed for, unless tagged cost.memory_gb"),
    "runs.gpu": (0.0, 1e4, "GPUs a run is billed for, unless tagged cost.gpu"),
}
#: Limits that count things, so must be whole numbers.
_INTEGER_KEYS = frozenset({"serverless.max_concurrency"})
_PRICE = re.compile(
    r"^\s*(?P<amount>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s+"
    r"(?P<currency>[A-Za-z]{3})\s*(?:/|\bper\b)\s*(?P<unit>.+?)\s*$"
)


@dataclass(frozen=True)
class Price:
    """One price as written and as a rate per base unit.

    Attributes:
        key: ``section.name`` (``provisioned.cpu``).
        amount: the number as written.
        unit: the unit as written (``vCPU-hour``).
        rate: the price per base unit (per vCPU-second for ``provisioned.cpu``).
        base: the base unit's name.
        origin: ``default`` or ``<file>:<line>``.
    """

    key: str
    amount: float
    unit: str
    rate: float
    base: str
    origin: str

    def text(self, currency: str) -> str:
        """The price as a user writes it (``0.0000166667 USD per GB-second``)."""
        return f"{plain_number(self.amount)} {currency} per {self.unit}"


def plain_number(value: float) -> str:
    """``value`` in positional notation with no exponent and no trailing zeros
    (``1.66667e-05`` → ``0.0000166667``), as price lists write amounts."""
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass(frozen=True)
class Number:
    key: str
    value: float
    origin: str


@dataclass(frozen=True)
class PriceCatalog:
    """Prices and limits in one currency.

    Attributes:
        currency: the ISO 4217 code every price is in.
        prices: key → :class:`Price`, for every key of :data:`PRICE_KEYS`.
        numbers: key → :class:`Number`, for every key of :data:`NUMBER_KEYS`.
        sources: the files read, in order (the defaults first).
    """

    currency: str
    prices: Mapping[str, Price]
    numbers: Mapping[str, Number]
    sources: tuple[str, ...] = field(default=())

    def rate(self, key: str) -> float:
        """Price per base unit of ``key`` (see the module's table)."""
        return self.prices[key].rate

    def number(self, key: str) -> float:
        return self.numbers[key].value

    @property
    def cpu_second(self) -> float:
        return self.rate("provisioned.cpu")

    @property
    def gib_second(self) -> float:
        return self.rate("provisioned.memory")

    @property
    def gpu_second(self) -> float:
        return self.rate("provisioned.gpu")

    @property
    def spot_discount(self) -> float:
        return self.number("provisioned.spot_discount")

    def replica_second(
        self, cpu: float, memory_gib: float, gpu: float = 0.0, *, spot: bool = False
    ) -> float:
        """What one replica with these requests costs per second it exists."""
        rate = cpu * self.cpu_second + memory_gib * self.gib_second + gpu * self.gpu_second
        return rate * (1.0 - self.spot_discount) if spot else rate

    def to_json(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "sources": list(self.sources),
            "prices": {
                k: {
                    "amount": p.amount,
                    "unit": p.unit,
                    "text": p.text(self.currency),
                    "rate": p.rate,
                    "per": p.base,
                    "origin": p.origin,
                    "meaning": PRICE_KEYS[k][1],
                }
                for k, p in self.prices.items()
            },
            "numbers": {
                k: {"value": n.value, "origin": n.origin, "meaning": NUMBER_KEYS[k][2]}
                for k, n in self.numbers.items()
            },
        }


def parse_unit(key: str, unit: str) -> tuple[float, str]:
    """How many base units one ``unit`` of ``key`` is, and the base unit's name.

    Raises:
        InvalidInput: a unit this key does not take.
    """
    kind, _ = PRICE_KEYS[key]
    text = " ".join(unit.strip().lower().split())
    if kind is None:
        if text in _REQUESTS:
            return _REQUESTS[text], "request"
        raise InvalidInput(
            f"{key}: unknown unit {unit!r} (use request, 1k requests or 1M requests)"
        )
    quantity, sep, time = text.rpartition("-")
    if sep and quantity in kind.quantity and time in kind.times:
        return kind.quantity[quantity] * _SECONDS[time], kind.base
    raise InvalidInput(f"{key}: unknown unit {unit!r} (use e.g. {kind.examples})")


def _line_of(text: str, section: str, name: str) -> int | None:
    """The 1-based line of ``name = …`` in ``[section]``, or of ``[name]`` (or a top-level
    ``name = …``) when ``section`` is ``""``; failing those, of a top-level dotted key
    ``section.name = …`` or inline table ``section = {…}``. None when not found."""
    current = ""
    assign = re.compile(rf"^\s*{re.escape(name)}\s*=")
    # ``section.name = …`` (a dotted key) or ``section = {…}`` (an inline table) up top.
    dotted = re.compile(rf"^\s*{re.escape(section)}\s*\.\s*{re.escape(name)}\s*=")
    inline = re.compile(rf"^\s*{re.escape(section or name)}\s*=")
    fallback = None
    for number, line in enumerate(text.splitlines(), 1):
        header = re.match(r"^\s*\[([^\]]+)\]", line)
        if header:
            current = header.group(1).strip()
            if not section and current == name:
                return number
        elif current == section and assign.match(line):
            return number
        elif (
            not current
            and fallback is None
            and ((section and dotted.match(line)) or inline.match(line))
        ):
            fallback = number
    return fallback


def parse_catalog(text: str, origin: str, base: PriceCatalog | None = None) -> PriceCatalog:
    """A catalog from TOML text; keys it leaves out come from ``base``.

    Args:
        text: the file's content.
        origin: the file's name, for errors and each price's origin.
        base: the catalog it overrides (None: the text must give every key).

    Raises:
        InvalidInput: not TOML, an unknown section or key, an unknown currency or
            unit, a price in another currency than the catalog's, a negative or
            non-finite number, a missing key; the message names the file and line.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib (before 3.14) puts the position only in the message: "… (at line 3, …)".
        found = re.search(r"\(at line (\d+)", str(exc))
        position = f"{origin}:{found[1]}" if found else origin
        raise InvalidInput(f"{position}: not valid TOML: {exc}") from None

    def where(section: str, name: str) -> str:
        line = _line_of(text, section, name)
        return f"{origin}:{line}" if line is not None else origin

    currency = doc.pop("currency", None)
    if currency is None:
        currency = base.currency if base is not None else None
        if currency is None:
            raise InvalidInput(f'{origin}: give the catalog\'s currency (currency = "USD")')
    elif not isinstance(currency, str) or currency.upper() not in CURRENCIES:
        raise InvalidInput(
            f"{where('', 'currency')}: unknown currency {currency!r} "
            "(use an ISO 4217 code such as USD, EUR, GBP)"
        )
    currency = currency.upper()
    # A catalog in another currency replaces every price (none is converted); the
    # limits, which are not money, still come from the base.
    other_currency = base is not None and currency != base.currency
    prices = dict(base.prices) if base is not None and not other_currency else {}
    numbers = dict(base.numbers) if base is not None else {}
    sections = {k.split(".")[0] for k in (*PRICE_KEYS, *NUMBER_KEYS)}
    for section, values in doc.items():
        if section not in sections:
            raise InvalidInput(
                f"{where('', section)}: unknown entry {section!r} "
                f"(sections: {', '.join(sorted(sections))})"
            )
        if not isinstance(values, dict):
            raise InvalidInput(
                f"{where('', section)}: {section!r} must be a section ([{section}]), got {values!r}"
            )
        for name, value in values.items():
            key = f"{section}.{name}"
            at = where(section, name)
            if key in PRICE_KEYS:
                prices[key] = _price(key, value, currency, at)
            elif key in NUMBER_KEYS:
                numbers[key] = _number(key, value, at)
            else:
                known = sorted(k.split(".", 1)[1] for k in (*PRICE_KEYS, *NUMBER_KEYS)
                               if k.startswith(section + "."))  # fmt: skip
                raise InvalidInput(
                    f"{at}: unknown key {key!r} (in [{section}]: {', '.join(known)})"
                )
    missing = [k for k in (*PRICE_KEYS, *NUMBER_KEYS) if k not in prices and k not in numbers]
    if missing:
        why = (
            f" (the catalog is in {currency}, the one it overrides in {base.currency}: "
            "give every price)"
            if base is not None and other_currency
            else ""
        )
        raise InvalidInput(f"{origin}: missing {', '.join(missing)}{why}")
    sources = (*(base.sources if base is not None else ()), origin)
    return PriceCatalog(
        currency,
        MappingProxyType({k: prices[k] for k in PRICE_KEYS}),
        MappingProxyType({k: numbers[k] for k in NUMBER_KEYS}),
        sources,
    )


def _price(key: str, value: object, currency: str, at: str) -> Price:
    if not isinstance(value, str):
        raise InvalidInput(
            f'{at}: {key} must be a string like "0.04 {currency} per vCPU-hour", got {value!r}'
        )
    match = _PRICE.match(value)
    if match is None:
        raise InvalidInput(
            f'{at}: {key}: cannot read {value!r} (write "<amount> <CURRENCY> per <unit>")'
        )
    amount = float(match["amount"])
    if not math.isfinite(amount) or amount < 0:
        raise InvalidInput(f"{at}: {key}: a price must be >= 0, got {match['amount']}")
    code = match["currency"].upper()
    if code not in CURRENCIES:
        raise InvalidInput(f"{at}: {key}: unknown currency {match['currency']!r}")
    if code != currency:
        raise InvalidInput(
            f"{at}: {key} is in {code} but the catalog is in {currency}; "
            "modelyard converts no currency"
        )
    try:
        per_unit, base = parse_unit(key, match["unit"])
    except InvalidInput as exc:
        raise InvalidInput(f"{at}: {exc.message}") from None
    return Price(key, amount, match["unit"], amount / per_unit, base, at)


def _number(key: str, value: object, at: str) -> Number:
    low, high, _ = NUMBER_KEYS[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{at}: {key} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise InvalidInput(f"{at}: {key} must be between {low:g} and {high:g}, got {value!r}")
    if key in _INTEGER_KEYS and not number.is_integer():
        raise InvalidInput(f"{at}: {key} must be a whole number, got {value!r}")
    return Number(key, number, at)


def default_catalog() -> PriceCatalog:
    """The catalog shipped with modelyard (``modelyard/cost/prices.toml``)."""
    text = resources.files("modelyard.cost").joinpath("prices.toml").read_text("utf-8")
    catalog = parse_catalog(text, "default")
    return PriceCatalog(
        catalog.currency,
        MappingProxyType({k: _origin(p, "default") for k, p in catalog.prices.items()}),
        MappingProxyType({k: Number(k, n.value, "default") for k, n in catalog.numbers.items()}),
        ("default",),
    )


def _origin(price: Price, origin: str) -> Price:
    return Price(price.key, price.amount, price.unit, price.rate, price.base, origin)


def catalog_path(home: Path, configured: str = "") -> Path | None:
    """The override file in effect: ``configured`` (MODELYARD_PRICES) if given, else
    ``<home>/prices.toml`` if it exists, else None."""
    if configured:
        return Path(configured).expanduser()
    path = home / "prices.toml"
    return path if path.is_file() else None


def load_catalog(path: Path | None = None) -> PriceCatalog:
    """The default catalog, overridden by ``path`` when given.

    Raises:
        InvalidInput: the file cannot be read or is invalid (see :func:`parse_catalog`).
    """
    catalog = default_catalog()
    if path is None:
        return catalog
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read the price file {path}: {exc}") from None
    return parse_catalog(text, str(path), catalog)
