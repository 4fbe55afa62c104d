"""kyro.testing.faults: the fault book every emulator arms, and how line faults pick requests."""

from __future__ import annotations

import msgspec

from kyro.testing.faults import FaultBook, picked


class Slow(msgspec.Struct, frozen=True, kw_only=True):
    """A latency fault."""

    seconds: float
    times: int | None = None
    probability: float | None = None
    scope: str = "api"


class Boom(msgspec.Struct, frozen=True, kw_only=True):
    """An error fault."""

    status: int = 500
    times: int | None = 1
    probability: float | None = None
    scope: str = "api"


class Expire(msgspec.Struct, frozen=True, kw_only=True):
    """A creation fault."""

    times: int | None = 1


class Line(msgspec.Struct, frozen=True, kw_only=True):
    """A standing fault."""

    mode: str = "error"


class Book(FaultBook[Slow | Boom | Expire | Line]):
    """A book whose line faults stand until cleared."""

    standing_kinds = (Line,)
    latency_kinds = (Slow,)
    action_kinds = (Boom,)


def test_http_faults_add_latency_and_answer_with_the_first_that_fires() -> None:
    """Latencies in scope add up; the first error answers; times are used up, then pruned."""
    book = Book()
    book.add(Slow(seconds=0.5), Boom(status=503, times=1), Boom(status=429, times=2))
    book.add(Slow(seconds=9.0, scope="files"))
    answers = [book.take_http(frozenset({"api"})) for _ in range(4)]
    assert [(delay, getattr(a, "status", None)) for delay, a in answers] == [
        (0.5, 503),
        (0.5, 429),
        (0.5, 429),
        (0.5, None),
    ]
    assert book.fired == 4 + 3
    assert book.active() == [Slow(seconds=0.5), Slow(seconds=9.0, scope="files")]


def test_probability_draws_from_the_seeded_generator() -> None:
    """Two books with one seed fire the same calls; a probability of 0.5 fires some, not all."""
    runs = []
    for _ in range(2):
        book = Book(seed=3)
        book.add(Boom(times=None, probability=0.5))
        runs.append([book.take_http(frozenset({"api"}))[1] for _ in range(40)])
    assert runs[0] == runs[1]
    assert 0 < sum(action is not None for action in runs[0]) < 40


def test_creation_faults_are_used_up_and_standing_ones_stay() -> None:
    """use_one takes one use per batch; standing faults are captured every time until cleared."""
    book = Book()
    book.add(Expire(times=2), Line(mode="missing"))
    assert [book.use_one(Expire) for _ in range(3)] == [Expire(times=2), Expire(times=2), None]
    assert book.standing(Line) == (Line(mode="missing"),)
    assert book.standing(Line) == (Line(mode="missing"),)
    book.clear()
    assert (book.standing(Line), book.active()) == ((), [])


def test_picked_names_or_draws_requests_stably() -> None:
    """Named custom_ids are always hit; a fraction hits the same requests for the same seed."""
    ids = [f"t{i}-j0-r0" for i in range(200)]
    none = frozenset[str]()
    assert picked("x", custom_ids=frozenset({"x"}), fraction=0.0, seed=0, salt="error")
    assert not any(picked(i, custom_ids=none, fraction=0.0, seed=0, salt="e") for i in ids)
    first = [i for i in ids if picked(i, custom_ids=none, fraction=0.25, seed=1, salt="e")]
    again = [i for i in ids if picked(i, custom_ids=none, fraction=0.25, seed=1, salt="e")]
    other = [i for i in ids if picked(i, custom_ids=none, fraction=0.25, seed=2, salt="e")]
    assert first == again
    assert first != other
    assert 20 < len(first) < 80
