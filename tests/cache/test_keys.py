"""Keys: stable across processes, carrying prefix, namespace, hash tag, version, generations."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import pytest

from salescast.cache import KeyArgumentError, KeyBuilder, hash_arguments


def test_argument_hash_is_the_same_in_another_process() -> None:
    code = (
        "from salescast.cache import hash_arguments;"
        "print(hash_arguments(['f', {'product_id': 'p1', 'horizon': 30,"
        " 'opts': {'b': 1, 'a': 2}}]))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    here = hash_arguments(["f", {"horizon": 30, "product_id": "p1", "opts": {"a": 2, "b": 1}}])
    assert other.stdout.strip() == here


def test_different_arguments_give_different_hashes() -> None:
    assert hash_arguments(1) != hash_arguments(1.0)
    assert hash_arguments("1") != hash_arguments(1)
    assert hash_arguments(b"a") != hash_arguments("a")


@dataclass
class Window:
    start: str
    end: str


def test_dataclasses_and_cache_key_objects_are_hashable() -> None:
    class Product:
        def __cache_key__(self) -> str:
            return "p1"

    assert hash_arguments(Window("a", "b")) == hash_arguments(Window("a", "b"))
    assert hash_arguments(Product()) == hash_arguments("p1")


def test_objects_without_a_stable_form_are_refused() -> None:
    with pytest.raises(KeyArgumentError):
        hash_arguments(object())


def test_entry_key_has_prefix_namespace_hash_tag_version_and_generation() -> None:
    keys = KeyBuilder("shop")
    key = keys.entry_key("prediction", "abc", version="7", tags=["product:p1"], generations=[3])
    assert key == "shop:prediction:{shop:product:p1}:v=7:g=3:abc"
    assert keys.tag_counter_key("product:p1") == "shop:_tag:{shop:product:p1}"
    assert keys.namespace_of(key) == "prediction"


def test_unsafe_versions_and_tags_are_hashed_into_the_key() -> None:
    key = KeyBuilder("shop").entry_key("data", "abc", version="a b}{*", tags=["x y"])
    assert " " not in key
    assert "*" not in key
    assert key.count("{") == 1


def test_bad_prefixes_and_namespaces_are_refused() -> None:
    with pytest.raises(ValueError, match="prefix"):
        KeyBuilder("a:b")
    with pytest.raises(ValueError, match="namespace"):
        KeyBuilder("shop").entry_key("_tag", "abc")
