"""The query parameters of the product listing, shared by `GET /products` and the dashboard."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from salescast.store.frequency import parse_frequency
from salescast.store.product_listing import DEFAULT_LIMIT, MAX_LIMIT, ProductQuery, SortKey

MAX_OFFSET = 2**31 - 1
"""Beyond any store's product count, within every store's integer range."""

SortParam = Literal[
    "id", "-id", "sales_days", "-sales_days", "mase", "-mase", "mase_vs_naive", "-mase_vs_naive"
]


class ProductListParams(BaseModel):
    """`?limit=&offset=&q=&freq=&has_model=&worse_than_naive=&sort=`, validated once for both faces.

    A model rather than loose parameters so the dashboard validates a page's
    URL with exactly the rules (and messages) of the API. Unknown parameters
    are refused: a misspelt filter that silently lists everything would read
    as "all products match".
    """

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(
        default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="products per page (1-1000)"
    )
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET, description="products to skip")
    q: str | None = Field(
        default=None,
        max_length=128,
        # PostgreSQL refuses NUL in any text parameter; no product id holds one.
        pattern=r"^[^\x00]*$",
        description="case-insensitive substring of the product id",
    )
    freq: str | None = Field(
        default=None,
        description="only products of this frequency: D, W-MON ... W-SUN, MS or ME",
    )
    has_model: bool | None = Field(
        default=None, description="true: only products with an active model; false: without"
    )
    worse_than_naive: bool | None = Field(
        default=None,
        description="true: only products whose active version's backtest MASE is above "
        "seasonal-naive's; false: those with a model that is not",
    )
    sort: SortParam = Field(
        default="id",
        description="id, sales_days, mase or mase_vs_naive (MASE over seasonal-naive's); "
        "a leading '-' sorts descending; products without the value come last",
    )

    @field_validator("freq")
    @classmethod
    def _known_frequency(cls, value: str | None) -> str | None:
        return None if value is None else parse_frequency(value)  # ValueError: a 422

    def to_query(self) -> ProductQuery:
        key: SortKey = self.sort.removeprefix("-")  # type: ignore[assignment]  # one of SortKey
        return ProductQuery(
            q=self.q or None,
            freq=self.freq,
            has_model=self.has_model,
            worse_than_naive=self.worse_than_naive,
            sort=key,
            descending=self.sort.startswith("-"),
            limit=self.limit,
            offset=self.offset,
        )
