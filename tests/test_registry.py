from __future__ import annotations

import pytest

from cai2.errors import ConfigError
from cai2.registry import Registry


def test_register_and_get_callable() -> None:
    reg: Registry[int] = Registry("numbers")

    @reg.register("one")
    def one() -> int:
        return 1

    assert reg.get("one")() == 1
    assert "one" in reg
    assert reg.names() == ["one"]


def test_lazy_string_target_is_imported_on_first_use() -> None:
    reg: Registry[object] = Registry("things")
    reg.register("join", "os.path:join")
    assert reg.get("join")("a", "b") == "a/b"


def test_unknown_name_lists_known_names() -> None:
    reg: Registry[object] = Registry("shifts")
    reg.register("typos", "os.path:join")
    with pytest.raises(ConfigError, match="unknown shift `paraphrase`; known: typos"):
        reg.get("paraphrase")


def test_duplicate_registration_is_an_error() -> None:
    reg: Registry[object] = Registry("things")
    reg.register("a", "os.path:join")
    with pytest.raises(ConfigError, match="registered twice"):
        reg.register("a", "os.path:split")


def test_missing_module_gives_install_hint() -> None:
    reg: Registry[object] = Registry("backends")
    reg.register("x", "cai2_no_such_module:thing")
    with pytest.raises(ConfigError, match="needs the module `cai2_no_such_module`"):
        reg.get("x")
