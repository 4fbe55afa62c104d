"""The public face of each package matches its ``__all__``."""

from __future__ import annotations

import importlib
import typing

import msgspec
import pytest

FACES: dict[str, list[str]] = {
    "kyro": [
        "AuthenticationError",
        "BatchJobError",
        "BatchJudge",
        "BatchProgress",
        "BatchRunResult",
        "BatchValidationError",
        "BudgetExceededError",
        "Evaluations",
        "JobBusyError",
        "JobPendingError",
        "JobProgress",
        "Judge",
        "JudgeCounts",
        "JudgeVerdict",
        "JudgesConfig",
        "KyroError",
        "KyroJudge",
        "NoJobError",
        "ProviderError",
        "ProviderNotFoundError",
        "ResultCounts",
        "RunVerdict",
        "StageProgress",
        "StepCounts",
        "StepOutcome",
        "TranscriptEvaluation",
        "VoteSettings",
        "__version__",
        "available_providers",
        "get_provider",
        "load_config",
        "redact",
        "verdict_message",
        "verdict_schema",
    ],
    "kyro.provider": [
        "AuthenticationError",
        "BatchError",
        "BatchLimits",
        "BatchProvider",
        "BatchState",
        "BatchStatus",
        "BatchValidationError",
        "CommandLineHooks",
        "JudgeRequest",
        "KyroError",
        "LiveProvider",
        "Message",
        "ProviderError",
        "RequestCounts",
        "ResponseSchema",
        "ResultError",
        "ResultLine",
        "RetryPolicy",
        "Usage",
        "header_problem",
        "is_terminal",
        "line_parts",
        "parse_timestamp",
        "retry_after_seconds",
        "send_with_retries",
    ],
    "kyro.testing": [
        "ConformanceError",
        "FakeBatch",
        "FakeProvider",
        "ProviderConformance",
        "Responder",
        "check_provider",
        "default_responder",
    ],
}
"""Each face of kyro and exactly the names it offers: users, provider authors, test doubles."""

# The errors a provider raises are offered on both faces; their home (``__module__``) is kyro.
SHARED_WITH_KYRO = {"AuthenticationError", "BatchValidationError", "KyroError", "ProviderError"}

# Pipeline internals that left the public surface (they freeze no on-disk format as contract).
INTERNALS = [
    "BuildSummary",
    "IndexEntry",
    "Preflight",
    "PreflightProblem",
    "Shard",
    "ShardBuilder",
    "Template",
    "Transcript",
    "TranscriptIndexReader",
    "TranscriptIndexWriter",
    "aiter_transcripts",
    "aplan_requests",
    "build_shards",
    "iter_index",
    "iter_transcripts",
    "parse_reply",
    "plan_requests",
    "vote",
]


@pytest.mark.parametrize("face", sorted(FACES))
def test_face_exports_exactly_the_expected_names(face: str) -> None:
    """Each face's ``__all__`` equals its expected list, name for name, in order."""
    module = importlib.import_module(face)
    assert list(module.__all__) == FACES[face]


@pytest.mark.parametrize("face", sorted(FACES))
def test_face_names_say_where_they_are_imported_from(face: str) -> None:
    """Every class and function a face exports reports that face (or ``kyro``) as its module."""
    module = importlib.import_module(face)
    checked = 0
    for name in module.__all__:
        value = getattr(module, name)
        if not isinstance(value, type) and not callable(value):
            continue
        if getattr(value, "__module__", "").startswith(("typing", "collections")):
            continue  # a type alias such as ``Responder``
        home = "kyro" if face == "kyro.provider" and name in SHARED_WITH_KYRO else face
        assert value.__module__ == home, f"{face}.{name} says {value.__module__}"
        checked += 1
    assert checked >= len(FACES[face]) // 2


def test_reprs_name_the_public_face() -> None:
    """``repr`` of an exported class names the face users import it from, not a private module."""
    import kyro
    import kyro.provider
    import kyro.testing

    assert repr(kyro.BatchJudge) == "<class 'kyro.BatchJudge'>"
    assert repr(kyro.provider.BatchLimits) == "<class 'kyro.provider.BatchLimits'>"
    assert repr(kyro.testing.FakeProvider) == "<class 'kyro.testing.FakeProvider'>"
    assert kyro.load_config.__module__ == "kyro"


@pytest.mark.parametrize("name", INTERNALS)
def test_pipeline_internals_are_not_public(name: str) -> None:
    """The shard builder, index, pre-flight and planner are not offered on any face."""
    for face in FACES:
        module = importlib.import_module(face)
        assert name not in module.__all__
        assert not hasattr(module, name), f"{face}.{name} is still reachable"


@pytest.mark.parametrize("face", sorted(FACES))
def test_face_classes_still_resolve_their_annotations(face: str) -> None:
    """After the ``__module__`` rewrite every exported class's annotations still resolve, and
    msgspec still builds a decoder for every exported Struct."""
    module = importlib.import_module(face)
    structs = 0
    for name in module.__all__:
        value = getattr(module, name)
        if not isinstance(value, type):
            continue
        hints = typing.get_type_hints(value)
        assert all(not isinstance(hint, str) for hint in hints.values()), name
        if issubclass(value, msgspec.Struct):
            msgspec.json.Decoder(value)
            structs += 1
    assert structs >= 1


def test_results_decode_by_their_public_type() -> None:
    """An evaluation encoded to JSON decodes back through ``kyro.TranscriptEvaluation``."""
    from kyro import JudgeVerdict, TranscriptEvaluation

    evaluation = TranscriptEvaluation(
        index=0,
        source="inline:0",
        status="SUCCESS",
        verdicts={"tone": JudgeVerdict(judge="tone", status="SUCCESS", votes={"SUCCESS": 1})},
    )
    decoded = msgspec.json.decode(msgspec.json.encode(evaluation), type=TranscriptEvaluation)
    assert decoded == evaluation


def test_faces_still_pickle_by_their_public_path() -> None:
    """A struct of a face round-trips through pickle, found again under its public path."""
    import pickle

    from kyro.provider import BatchLimits

    limits = BatchLimits(max_requests=3, max_bytes=4096)
    assert pickle.loads(pickle.dumps(limits)) == limits


PACKAGES = [
    "kyro",
    "kyro.provider",
    "kyro.testing",
    "kyro_openai",
    "kyro_local",
    "kyro_openai.testing",
    "kyro_anthropic",
    "kyro_anthropic.testing",
]


@pytest.mark.parametrize("package", PACKAGES)
def test_all_is_sorted_and_complete(package: str) -> None:
    """``__all__`` is sorted and names exactly the public objects the package defines."""
    module = importlib.import_module(package)
    exported = list(module.__all__)
    assert exported == sorted(exported)
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not getattr(value, "__name__", "").startswith(package + ".")
        and not isinstance(value, type(importlib))
    }
    public.discard("annotations")
    assert public <= set(exported), f"public but not in __all__: {sorted(public - set(exported))}"
    for name in exported:
        assert hasattr(module, name), f"{package}.__all__ names missing {name}"
    if not hasattr(module, "__getattr__"):  # no lazy face: every export is bound at import
        assert public == set(exported)


def test_error_tree_is_exported_with_its_bases() -> None:
    """Every error kyro raises is a public name of ``kyro``, under the base it subclasses."""
    import kyro

    bases = {
        "KyroError": Exception,
        "BatchValidationError": kyro.KyroError,
        "JobPendingError": kyro.BatchValidationError,
        "NoJobError": kyro.BatchValidationError,
        "BatchJobError": kyro.KyroError,
        "JobBusyError": kyro.KyroError,
        "ProviderError": kyro.KyroError,
        "AuthenticationError": kyro.ProviderError,
        "ProviderNotFoundError": kyro.KyroError,
        "BudgetExceededError": kyro.KyroError,
    }
    exported = {
        name
        for name in kyro.__all__
        if isinstance(getattr(kyro, name), type) and issubclass(getattr(kyro, name), Exception)
    }
    assert exported == set(bases)
    for name, base in bases.items():
        error = getattr(kyro, name)
        assert error.__bases__ == (base,), name


@pytest.mark.parametrize("face", ["kyro", "kyro.provider"])
def test_dir_of_a_lazy_face_lists_every_export(face: str) -> None:
    """``dir()`` of a lazily loaded face names all of ``__all__`` and its module attributes."""
    module = importlib.import_module(face)
    listed = dir(module)
    assert listed == sorted(listed)
    assert set(module.__all__) <= set(listed)
    assert {"__name__", "__getattr__", "__all__"} <= set(listed)
