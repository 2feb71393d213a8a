"""Parse and validate sales uploads (CSV or JSON rows) into rows ready to store, all-or-nothing.

Nothing here touches a database: `parse_csv` and `parse_json_rows` either return every
row of the upload, checked, or raise `IngestError` listing what is wrong (and nothing
else for bad input), so the caller stores all of an upload or none of it.

What an upload must look like (the same rules for CSV and JSON, columns named by
`ColumnSpec`; other columns are ignored):

- CSV is UTF-8 (a BOM is stripped), comma-separated, quoted as the `csv` module reads
  it, header first. Blank lines, and lines whose fields are all empty (spreadsheet
  exports end with those), are skipped. Problems name the physical line a record
  starts on, the header being line 1. JSON problems name the 1-based row number.
- Dates are ISO `YYYY-MM-DD`. A midnight timestamp (`YYYY-MM-DDT00:00:00` or
  `YYYY-MM-DD 00:00:00`) is accepted too, because databases and spreadsheets export
  dates that way; any other time of day is rejected, since sales are daily.
- Quantities are decimal numbers (`12`, `-3`, `12.5`, `1e3`); negatives are returns.
  No `nan`, no infinities, no thousands separators.
- A product id is the stripped values of the product columns joined by
  `PRODUCT_KEY_SEPARATOR`, at most 128 characters. Each value must start with an ASCII
  letter or digit and hold only letters, digits, `_`, `.` and `-`: ids go into URL
  paths and cache keys, so no `/`, `:`, spaces, braces or control characters, and no
  `.`/`..` path segments.
- A (product, date) pair may appear once per upload.

The module is past 500 lines on purpose: both formats share one row checker and one
set of rules, and this is the one place the API layer imports them from. If it grows,
the JSON half (`parse_json_rows` and its `_json_*` helpers) is the piece to move out.
"""

from __future__ import annotations

import csv
import datetime
import io
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from operator import itemgetter
from typing import TYPE_CHECKING, Literal, NamedTuple

if TYPE_CHECKING:
    from _csv import Reader

PRODUCT_KEY_SEPARATOR = "-"
MAX_PRODUCT_ID_CHARS = 128
MAX_FIELD_CHARS = 1_000

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
# float() alone would also take "nan", "inf", "1_000" and non-ASCII digits.
_NUMBER_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_PRODUCT_PART_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*", re.ASCII)
_BAD_PRODUCT_CHAR_RE = re.compile(r"[^A-Za-z0-9_.-]", re.ASCII)
_MIDNIGHT_SUFFIXES = ("T00:00:00", " 00:00:00")
_SHOWN_VALUE_CHARS = 40
_CACHE_LIMIT = 100_000


@dataclass(frozen=True)
class ColumnSpec:
    """Which columns (CSV header names or JSON keys) hold the date, product and quantity."""

    date: str = "date"
    product: tuple[str, ...] = ("product_id",)
    quantity: str = "quantity"

    def __post_init__(self) -> None:
        if not isinstance(self.product, tuple) or not self.product:
            raise ValueError("ColumnSpec.product must be a non-empty tuple of column names")
        names = self.names
        if len(set(names)) != len(names):
            raise ValueError(f"ColumnSpec names a column twice: {names}")

    @property
    def names(self) -> tuple[str, ...]:
        """Every required column, in the order problems about missing ones list them."""
        return (self.date, *self.product, self.quantity)


@dataclass(frozen=True)
class IngestProblem:
    """One thing wrong with an upload; `line` is None when it is about the whole upload.

    `line` is the 1-based physical CSV line (header = 1) or, with `unit="row"`, the
    1-based JSON row number; `column` is None when the problem is not about a column.
    """

    line: int | None
    column: str | None
    reason: str
    unit: Literal["line", "row"] = "line"

    def __str__(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"{self.unit} {self.line}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason


class IngestError(ValueError):
    """The upload was rejected as a whole; nothing may be stored.

    `problems` holds the first problems found, in file order (at most the parser's
    `max_problems`); `total` counts every problem found (>= len(problems)).
    """

    def __init__(self, problems: Sequence[IngestProblem], total: int | None = None) -> None:
        self.problems = list(problems)
        self.total = len(self.problems) if total is None else total
        if self.total < len(self.problems):
            raise ValueError("IngestError.total is smaller than the problems listed")
        super().__init__(self.problems, self.total)

    def __str__(self) -> str:
        plural = "" if self.total == 1 else "s"
        lines = [f"sales upload rejected, {self.total} problem{plural} found:"]
        lines.extend(f"  {problem}" for problem in self.problems)
        if self.total > len(self.problems):
            lines.append(f"  ... and {self.total - len(self.problems)} more")
        return "\n".join(lines)


@dataclass(frozen=True)
class ParsedSales:
    """A fully valid upload: (product_id, date, quantity) rows in file order.

    `lines[i]` is where `rows[i]` came from (the CSV line or JSON row number, as
    `unit` says), so a problem found later, when the rows meet the store, can
    still name its line. Two uploads with the same rows compare equal.
    """

    rows: list[tuple[str, datetime.date, float]]
    lines: list[int] = field(default_factory=list, compare=False)
    unit: Literal["line", "row"] = field(default="line", compare=False)

    def line_of(self, index: int) -> int | None:
        """The line (or row number) of `rows[index]`; None when it was not recorded."""
        return self.lines[index] if index < len(self.lines) else None

    @cached_property
    def product_ids(self) -> list[str]:
        """The distinct product ids, sorted."""
        return sorted({product for product, _, _ in self.rows})


class _ProblemLog:
    """Keeps the first `limit` problems and counts all of them."""

    def __init__(self, limit: int, unit: Literal["line", "row"]) -> None:
        if limit < 0:
            raise ValueError("max_problems must be >= 0")
        self.limit = limit
        self.unit: Literal["line", "row"] = unit
        self.listed: list[IngestProblem] = []
        self.total = 0

    def add(self, line: int | None, column: str | None, reason: str) -> None:
        self.total += 1
        if len(self.listed) < self.limit:
            self.listed.append(IngestProblem(line, column, reason, self.unit))

    def reject(self, line: int | None, column: str | None, reason: str) -> IngestError:
        """The error for a problem after which nothing more can be read."""
        self.add(line, column, reason)
        return self.error()

    def error(self) -> IngestError:
        return IngestError(self.listed, self.total)


def _show(value: str) -> str:
    """A value quoted for a message, cut short so one bad cell cannot flood the report."""
    if len(value) > _SHOWN_VALUE_CHARS:
        return repr(value[:_SHOWN_VALUE_CHARS]) + "..."
    return repr(value)


def _date_problem(raw: str) -> datetime.date | str:
    """The date in `raw`, or why it is not one."""
    text = raw.strip()
    if not text:
        return "is empty; expected a date as YYYY-MM-DD"
    if len(text) == 19 and text.endswith(_MIDNIGHT_SUFFIXES):
        text = text[:10]
    if not _DATE_RE.fullmatch(text):
        if len(text) == 19 and text[10] in "T " and _DATE_RE.fullmatch(text[:10]):
            return f"has a time of day other than midnight: {_show(raw)}; sales are daily"
        return f"not an ISO date (YYYY-MM-DD): {_show(raw)}"
    try:
        return datetime.date.fromisoformat(text)
    except ValueError as err:
        return f"not a real calendar date: {_show(raw)} ({err})"


def _quantity_problem(raw: str | float) -> float | str:
    """The quantity in `raw`, or why it is not one."""
    if isinstance(raw, str):
        text = raw.strip()
        if not text:
            return "is empty; expected a number"
        if not _NUMBER_RE.fullmatch(text):
            if text.lower().lstrip("+-") in {"nan", "inf", "infinity"}:
                return f"not a finite number: {_show(raw)}"
            hint = " (no thousands separators; use '.' for decimals)" if "," in text else ""
            return f"not a number: {_show(raw)}{hint}"
        raw = float(text)
    if not math.isfinite(raw):
        return f"not a finite number: {raw!r}"
    return raw


def _part_problem(part: str) -> str | None:
    """Why one stripped product value cannot be part of a product id, or None."""
    if not part:
        return "is empty; every row needs a product"
    if _PRODUCT_PART_RE.fullmatch(part):
        return None
    bad = _BAD_PRODUCT_CHAR_RE.search(part)
    allowed = "ASCII letters, digits, '_', '.', '-'"
    if bad is None:
        return f"product value must start with a letter or digit: {_show(part)}"
    return f"{bad.group()!r} is not allowed in a product id (allowed: {allowed}): {_show(part)}"


def _length_problem(value: str) -> str | None:
    if len(value) > MAX_FIELD_CHARS:
        return f"is {len(value):,} characters long; the limit for a field is {MAX_FIELD_CHARS:,}"
    return None


_RawProduct = str | tuple[str, ...]


class _RowChecker:
    """Turns raw (date, quantity, product) values into rows to store, logging problems."""

    def __init__(self, spec: ColumnSpec, log: _ProblemLog) -> None:
        self.spec = spec
        self.log = log
        self.rows: list[tuple[str, datetime.date, float]] = []
        self.lines: list[int] = []
        # Caches of valid values only. An upload has few distinct dates, products and
        # quantities, so most rows cost dictionary lookups instead of parses (this keeps
        # the 913k-row store-item file near a second). Capped, because a file of
        # all-distinct values would only pay for filling them.
        self._dates: dict[str, datetime.date] = {}
        self._quantities: dict[str | float, float] = {}
        self._products: dict[_RawProduct, str] = {}
        self._ids: dict[str, tuple[tuple[str, ...], int]] = {}
        # Lines seen per product and date; nested so that a row costs no key tuple.
        self._seen: dict[str, dict[datetime.date, int]] = {}

    def add(self, line: int, raw_date: str, raw_qty: str | float, raw_product: _RawProduct) -> None:
        day = self._dates.get(raw_date)
        if day is None:
            day = self._date(line, raw_date)
        product = self._products.get(raw_product)
        if product is None:
            product = self._product(line, raw_product)
        qty = self._quantities.get(raw_qty)
        if qty is None:
            qty = self._quantity(line, raw_qty)
        if day is None or qty is None or product is None:
            return
        days = self._seen.get(product)
        if days is None:
            days = self._seen[product] = {}
        first = days.setdefault(day, line)
        if first != line:
            reason = f"duplicate of {self.log.unit} {first}: product {product!r} on {day}"
            self.log.add(line, None, reason)
            return
        self.rows.append((product, day, qty))
        self.lines.append(line)

    def _date(self, line: int, raw: str) -> datetime.date | None:
        day = _length_problem(raw) or _date_problem(raw)
        if isinstance(day, str):
            self.log.add(line, self.spec.date, day)
            return None
        if len(self._dates) < _CACHE_LIMIT:
            self._dates[raw] = day
        return day

    def _quantity(self, line: int, raw: str | float) -> float | None:
        qty = (isinstance(raw, str) and _length_problem(raw)) or _quantity_problem(raw)
        if isinstance(qty, str):
            self.log.add(line, self.spec.quantity, qty)
            return None
        if len(self._quantities) < _CACHE_LIMIT:
            self._quantities[raw] = qty
        return qty

    def _product(self, line: int, raw: _RawProduct) -> str | None:
        parts = (raw,) if isinstance(raw, str) else raw
        stripped = tuple(part.strip() for part in parts)
        valid = True
        for column, part in zip(self.spec.product, stripped, strict=True):
            reason = _length_problem(part) or _part_problem(part)
            if reason is not None:
                self.log.add(line, column, reason)
                valid = False
        if not valid:
            return None
        product = PRODUCT_KEY_SEPARATOR.join(stripped)
        single = self.spec.product[0] if len(stripped) == 1 else None
        if len(product) > MAX_PRODUCT_ID_CHARS:
            reason = f"product id {_show(product)} has {len(product)} characters"
            self.log.add(line, single, f"{reason}; the limit is {MAX_PRODUCT_ID_CHARS}")
            return None
        if single is None and not self._is_unambiguous(line, product, stripped):
            return None
        if len(self._products) < _CACHE_LIMIT:
            self._products[raw] = product
        return product

    def _is_unambiguous(self, line: int, product: str, stripped: tuple[str, ...]) -> bool:
        # Joined keys are ambiguous when a value holds the separator: ("A-B", "C") and
        # ("A", "B-C") must not silently become one product. Values that differ only in
        # surrounding spaces strip to the same tuple and are one product.
        earlier, earlier_line = self._ids.setdefault(product, (stripped, line))
        if earlier == stripped:
            return True
        self.log.add(
            line,
            None,
            f"product values {stripped!r} give the id {product!r}, the same as "
            f"{earlier!r} on {self.log.unit} {earlier_line}",
        )
        return False


_DEFAULT_SPEC = ColumnSpec()


def parse_csv(
    data: bytes, spec: ColumnSpec = _DEFAULT_SPEC, *, max_problems: int = 20
) -> ParsedSales:
    """Parse a CSV upload; raise `IngestError` (and nothing else) if any of it is invalid."""
    log = _ProblemLog(max_problems, "line")
    _check_text(data, log)
    # Read through a decoding wrapper, not a StringIO of the decoded text: StringIO
    # keeps 4 bytes a character, about 70 MB more for the 17 MB store-item file.
    with io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline="") as stream:
        reader = csv.reader(stream, strict=True)
        try:
            layout = _read_header(reader, spec, log)
        except csv.Error as err:
            raise log.reject(1, None, _csv_error_reason(err, 1, reader.line_num)) from None
        checker = _RowChecker(spec, log)
        rows = _read_csv_rows(reader, layout, checker)
    if log.total:
        raise log.error()
    if not rows:
        raise log.reject(None, None, "no data rows: the file holds only a header")
    return ParsedSales(rows, checker.lines, "line")


def _check_text(data: bytes, log: _ProblemLog) -> None:
    """Reject uploads that are not UTF-8 text, or are empty, before any CSV is read."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise log.reject(
            _line_at(data[: err.start].decode("utf-8")),
            None,
            f"not UTF-8 text: byte 0x{data[err.start]:02x} at offset {err.start}; binary data "
            "or another encoding (Latin-1, UTF-16, ...): save the file as UTF-8",
        ) from None
    text = text.removeprefix("\ufeff")
    if not text or text.isspace():
        raise log.reject(None, None, "the upload is empty")
    nul = text.find("\x00")
    if nul >= 0:
        line = _line_at(text[:nul])
        raise log.reject(line, None, "contains NUL bytes: binary data, not CSV text")


def _line_at(prefix: str) -> int:
    """The physical line the text after `prefix` is on, counting line ends as csv does."""
    return prefix.count("\n") + prefix.count("\r") - prefix.count("\r\n") + 1


def _csv_error_reason(err: csv.Error, line: int, error_line: int) -> str:
    """Why the csv module gave up on the record starting on `line`."""
    if "field limit" in str(err):
        reason = f"a field is longer than {csv.field_size_limit():,} characters"
    elif "unexpected end of data" in str(err):
        reason = "a quoted field is never closed"
    else:
        reason = f"not valid CSV ({err})"
    if error_line > line:
        reason += f" (the record runs from line {line} to {error_line}: an unclosed quote?)"
    return f"{reason}; the rest of the file was not read"


class _CsvLayout(NamedTuple):
    """Where the required columns sit in the header."""

    width: int
    date_at: int
    quantity_at: int
    product_of: Callable[[list[str]], _RawProduct]


def _read_header(reader: Reader, spec: ColumnSpec, log: _ProblemLog) -> _CsvLayout:
    header = next((row for row in reader if "".join(row).strip()), None)
    if header is None:
        raise log.reject(None, None, "the upload is empty")
    line = reader.line_num
    names = [name.strip() for name in header]
    if len(names) == 1 and len(spec.names) > 1:
        for delimiter in (";", "\t", "|"):
            if delimiter in names[0]:
                reason = f"the file seems to use {delimiter!r} as delimiter; salescast expects ','"
                raise log.reject(line, None, reason)
    for name in spec.names:
        if names.count(name) > 1:
            log.add(line, name, "appears more than once in the header")
    missing = [name for name in spec.names if name not in names]
    if missing:
        found = ", ".join(_show(name) for name in names[:30])
        listed = ", ".join(repr(name) for name in missing)
        plural = "s" if len(missing) > 1 else ""
        folded = {name.casefold() for name in names}
        hint = any(name.casefold() in folded for name in missing)
        hint_text = " (column names are case-sensitive)" if hint else ""
        log.add(line, None, f"missing required column{plural} {listed}; found: {found}{hint_text}")
    if log.total:
        raise log.error()
    product_of = itemgetter(*(names.index(name) for name in spec.product))
    return _CsvLayout(len(names), names.index(spec.date), names.index(spec.quantity), product_of)


def _read_csv_rows(
    reader: Reader, layout: _CsvLayout, checker: _RowChecker
) -> list[tuple[str, datetime.date, float]]:
    width, date_at, quantity_at, product_of = layout
    add = checker.add
    log = checker.log
    # A quoted field may hold line breaks: a record starts on the line after the
    # previous record ended, and problems point there.
    next_line = reader.line_num + 1
    try:
        for row in reader:
            line, next_line = next_line, reader.line_num + 1
            if len(row) != width or not row[date_at].strip():
                if not "".join(row).strip():
                    continue
                if len(row) != width:
                    log.add(line, None, _width_reason(len(row), width, line, next_line - 1))
                    continue
            add(line, row[date_at], row[quantity_at], product_of(row))
    except csv.Error as err:
        # After an error the reader may be inside a quoted field: what follows is noise.
        raise log.reject(
            next_line, None, _csv_error_reason(err, next_line, reader.line_num)
        ) from None
    return checker.rows


def _width_reason(fields: int, width: int, line: int, end_line: int) -> str:
    reason = f"has {fields} fields, the header has {width}"
    if end_line > line:
        reason += f" (a quoted field runs from line {line} to {end_line}: an unclosed quote?)"
    return reason


def parse_json_rows(
    rows: object, spec: ColumnSpec = _DEFAULT_SPEC, *, max_problems: int = 20
) -> ParsedSales:
    """Parse decoded JSON rows (a list of objects keyed by the spec's column names).

    Raises `IngestError` (and nothing else) if any row is invalid; problems name the
    1-based row number as their `line`.
    """
    log = _ProblemLog(max_problems, "row")
    if not isinstance(rows, list):
        raise log.reject(None, None, f"expected a list of row objects, got {_json_type(rows)}")
    checker = _RowChecker(spec, log)
    for number, item in enumerate(rows, start=1):
        values = _json_row_values(number, item, spec, log)
        if values is not None:
            checker.add(number, *values)
    if log.total:
        raise log.error()
    if not checker.rows:
        raise log.reject(None, None, "no data rows: the list is empty")
    return ParsedSales(checker.rows, checker.lines, "row")


def _json_type(value: object) -> str:
    """The JSON name of a value's type, for messages to API clients."""
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    names |= {type(None): "null", list: "an array", dict: "an object"}
    return names.get(type(value), type(value).__name__)


def _json_row_values(
    number: int, item: object, spec: ColumnSpec, log: _ProblemLog
) -> tuple[str, str | float, _RawProduct] | None:
    """One row's raw values with their JSON types checked, or None after logging why not."""
    if not isinstance(item, dict):
        keys = list(spec.names)
        log.add(number, None, f"expected an object with keys {keys}, got {_json_type(item)}")
        return None
    raw_date = _json_date(number, item, spec.date, log)
    parts = [_json_product_part(number, item, name, log) for name in spec.product]
    raw_qty = _json_quantity(number, item, spec.quantity, log)
    product = tuple(part for part in parts if part is not None)
    if raw_date is None or raw_qty is None or len(product) < len(parts):
        return None
    return raw_date, raw_qty, product[0] if len(product) == 1 else product


def _json_date(number: int, item: dict[object, object], name: str, log: _ProblemLog) -> str | None:
    value = item.get(name)
    if isinstance(value, str):
        return value
    reason = f"must be a string YYYY-MM-DD, got {_json_type(value)}"
    log.add(number, name, reason if name in item else "missing key")
    return None


def _json_quantity(
    number: int, item: dict[object, object], name: str, log: _ProblemLog
) -> str | float | None:
    value = item.get(name)
    if isinstance(value, str | float):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            log.add(number, name, "not a finite number: too large")
            return None
    reason = f"must be a number or a numeric string, got {_json_type(value)}"
    log.add(number, name, reason if name in item else "missing key")
    return None


def _json_product_part(
    number: int, item: dict[object, object], name: str, log: _ProblemLog
) -> str | None:
    value = item.get(name)
    if isinstance(value, str):
        return value
    reason = f"must be a string or an integer, got {_json_type(value)}"
    # Integer ids (store 3, item 17) are common in JSON. Past 430 bits (~130 digits) an
    # id is over the length limit anyway, and str() would hit its digit limit.
    if isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() <= 430:
            return str(value)
        reason = f"integer id has more than {MAX_PRODUCT_ID_CHARS} digits"
    log.add(number, name, reason if name in item else "missing key")
    return None
