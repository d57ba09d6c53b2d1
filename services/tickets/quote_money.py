"""A quote's amounts in exact decimals (never floats): EUR with two decimals, VAT per line.

Amounts travel as strings ("1250.00") and are kept as integer cents; quantities and VAT
rates as hundredths. A line's net is quantity x unit price, its VAT net x rate / 100,
each rounded half up to the cent; the totals are the sums of the rounded lines, as an
invoice shows them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from services.common.rpc_errors import invalid

CENT = Decimal("0.01")
UNITS = ("hours", "days", "units")
MAX_LINES = 50
MAX_DESCRIPTION = 500
# At most a billion euros a line: more is a typing error.
_AMOUNT = re.compile(r"^\d{1,10}(?:[.,]\d{1,2})?$")


def parse_amount(field: str, text: str, allow_zero: bool = True) -> Decimal:
    """``text`` ("1250", "1250.5", "1250,50") as an exact amount; ``INVALID_ARGUMENT``
    naming ``field`` otherwise."""
    raw = text.strip()
    if not _AMOUNT.fullmatch(raw):
        invalid(field, f"{text!r} is not an amount with at most two decimals")
    value = Decimal(raw.replace(",", "."))
    if not allow_zero and value == 0:
        invalid(field, "must be more than 0")
    return value


def cents(value: Decimal) -> int:
    return int((value / CENT).to_integral_value(ROUND_HALF_UP))


def from_cents(amount: int) -> str:
    """Integer cents as the string an amount travels as ("1250.00")."""
    return str((Decimal(amount) * CENT).quantize(CENT))


def _round(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Line:
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    vat_rate: Decimal

    @property
    def net(self) -> Decimal:
        return _round(self.quantity * self.unit_price)

    @property
    def vat(self) -> Decimal:
        return _round(self.net * self.vat_rate / 100)


@dataclass(frozen=True)
class Totals:
    net: Decimal
    vat: Decimal

    @property
    def total(self) -> Decimal:
        return self.net + self.vat


def parse_line(
    index: int, description: str, quantity: str, unit: str, price: str, rate: str
) -> Line:
    """One line of a quote, checked; fields are named ``lines[i].<field>``."""
    name = f"lines[{index}]"
    text = description.strip()
    if not text:
        invalid(f"{name}.description", "is required")
    if len(text) > MAX_DESCRIPTION:
        invalid(f"{name}.description", f"must be at most {MAX_DESCRIPTION} characters")
    if unit not in UNITS:
        invalid(f"{name}.unit", f"must be one of {', '.join(UNITS)}")
    vat_rate = parse_amount(f"{name}.vat_rate", rate or "22")
    if vat_rate > 100:
        invalid(f"{name}.vat_rate", "must be a percentage from 0 to 100")
    return Line(
        description=text,
        quantity=parse_amount(f"{name}.quantity", quantity, allow_zero=False),
        unit=unit,
        unit_price=parse_amount(f"{name}.unit_price", price),
        vat_rate=vat_rate,
    )


def totals(lines: list[Line]) -> Totals:
    return Totals(
        net=sum((x.net for x in lines), Decimal(0)), vat=sum((x.vat for x in lines), Decimal(0))
    )
