"""The tag every cached entry of a product carries, and dropping a product's entries."""

from __future__ import annotations

from collections.abc import Iterable

from salescast.cache import TieredCache, product_tag


def product_tags(product_id: str, *_args: object, **_kwargs: object) -> list[str]:
    """The `tags` of every cached function of the service: the first argument is the product."""
    return [product_tag(product_id)]


def invalidate_products(cache: TieredCache, product_ids: Iterable[str]) -> None:
    """Drop every cached entry of these products, in every worker (pub/sub) and in Redis."""
    for product_id in product_ids:
        cache.invalidate_tag(product_tag(product_id))
