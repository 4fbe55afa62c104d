"""Finding providers by name: entry points, the built-in table, conflicts and laziness."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

import kyro
from kyro import KyroError
from kyro._registry import _Registry
from kyro.testing import FakeProvider
from tests.support.fresh import modules_loaded


@dataclass(frozen=True)
class Dist:
    """A distribution as an entry point names it."""

    name: str


@dataclass(frozen=True)
class FakeEntryPoint:
    """Just the entry-point attributes the registry reads."""

    name: str
    value: str
    dist: Dist | None = None


def test_builtin_table_names_openai_and_local_without_metadata() -> None:
    """With no entry points at all, openai, anthropic and local are still known."""
    assert _Registry(entry_points=[]).available() == {
        "anthropic": "kyro_anthropic:AnthropicBatchProvider",
        "local": "kyro_local:LocalProvider",
        "openai": "kyro_openai:OpenAIBatchProvider",
    }


def test_entry_point_repeating_a_builtin_target_merges() -> None:
    """The package's own entry point, even listed twice, does not count as a conflict."""
    own = FakeEntryPoint("openai", "kyro_openai:OpenAIBatchProvider", Dist("kyro"))
    registry = _Registry(entry_points=[own, own])
    assert registry.target("openai") == "kyro_openai:OpenAIBatchProvider"


def test_two_distributions_claiming_one_name_is_an_error_naming_both() -> None:
    """Two different targets for one name raise, naming both distributions."""
    points = [
        FakeEntryPoint("judge", "pkg_a:Provider", Dist("kyro-judge-a")),
        FakeEntryPoint("judge", "pkg_b:Provider", Dist("kyro-judge-b")),
    ]
    registry = _Registry(entry_points=points)
    with pytest.raises(KyroError, match="kyro-judge-a") as info:
        registry.target("judge")
    assert "kyro-judge-b" in str(info.value)
    assert registry.target("openai") == "kyro_openai:OpenAIBatchProvider"  # others unaffected


def test_third_party_overriding_a_builtin_name_conflicts() -> None:
    """A plugin claiming 'openai' with another class conflicts with the built-in one."""
    points = [FakeEntryPoint("openai", "other:Provider", Dist("kyro-openai-fork"))]
    with pytest.raises(KyroError, match=r"kyro \(built-in\).*kyro-openai-fork"):
        _Registry(entry_points=points).available()


def test_unknown_name_lists_the_available_ones() -> None:
    """Asking for an unknown provider names the ones that exist."""
    with pytest.raises(KyroError, match=r"unknown provider 'nope'.*local, openai"):
        _Registry(entry_points=[]).target("nope")


def test_load_builds_the_provider_with_options() -> None:
    """load imports the target and passes the options to it."""
    points = [FakeEntryPoint("fake", "kyro.testing:FakeProvider", Dist("kyro"))]
    provider = _Registry(entry_points=points).load("fake", {"polls_until_done": 7})
    assert isinstance(provider, FakeProvider)
    assert provider.polls_until_done == 7


def test_load_reports_an_unimportable_target() -> None:
    """A target whose module is missing raises KyroError chained from the ImportError."""
    points = [FakeEntryPoint("ghost", "kyro_ghost_module:Provider", Dist("kyro-ghost"))]
    with pytest.raises(KyroError, match="could not be loaded") as info:
        _Registry(entry_points=points).load("ghost", {})
    assert isinstance(info.value.__cause__, ImportError)


def test_load_refuses_objects_that_are_not_providers() -> None:
    """A target that builds something other than a BatchProvider is refused."""
    points = [FakeEntryPoint("weird", "builtins:dict", Dist("x"))]
    with pytest.raises(KyroError, match=r"does not implement kyro\.provider\.BatchProvider"):
        _Registry(entry_points=points).load("weird", {})


def test_entry_point_extras_are_ignored_in_the_target() -> None:
    """An entry-point value with extras keeps only module:attr."""
    points = [FakeEntryPoint("x", "pkg.mod:Cls [extra]", Dist("d"))]
    assert _Registry(entry_points=points).target("x") == "pkg.mod:Cls"


def test_installed_registry_finds_the_openai_provider() -> None:
    """The public functions find the bundled providers and build OpenAI's one by name."""
    assert kyro.available_providers()["openai"] == "kyro_openai:OpenAIBatchProvider"
    provider = kyro.get_provider("openai", api_key="sk-test", base_url="http://127.0.0.1:9/v1")
    assert provider.name == "openai"


@pytest.mark.slow  # a fresh interpreter in a child process
def test_get_provider_imports_only_the_requested_provider() -> None:
    """Loading openai in a fresh process does not import the local provider."""
    statements = "import kyro\nkyro.get_provider('openai', api_key='k')"
    loaded = modules_loaded(statements, ["kyro_openai", "kyro_local"])
    assert {name.split(".")[0] for name in loaded} == {"kyro_openai"}
