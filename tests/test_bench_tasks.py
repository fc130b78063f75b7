"""The ladder benchmark's task suite: every task is solvable and its checker is honest.

Each task's reference solution is replayed through the scripted model in a real agent
(real tools, real run store): the checker must accept it and reject a wrong variant.
No real model is loaded.
"""

from __future__ import annotations

import copy
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from agentkit import RunStore, Sampling
from agentkit.testing import ScriptedModel, Turn, call, reply

# `bench` is a folder of the checkout, not an installed package; plain `pytest` does not
# put the checkout on sys.path (`python -m pytest` would).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.tasks import (
    KINDS,
    SYSTEM_PROMPTS,
    TASKS,
    TRAIN_PER_KIND,
    Check,
    Task,
    answer_has_number,
    answer_has_text,
    as_cases,
    build_agent,
    numbers_in,
    split_of,
    tasks,
)

SAMPLING = Sampling(temperature=0.0, max_tokens=64, seed=0)


def _run(task: Task, script: list[Turn], root: Path, store: RunStore) -> tuple[str, Check]:
    status, check, _ = _run_full(task, script, root, store)
    return status, check


def _run_full(
    task: Task, script: list[Turn], root: Path, store: RunStore
) -> tuple[str, Check, list[str]]:
    """Status, verdict and the tool results the model was shown."""
    model = ScriptedModel(script)
    agent, env = build_agent(task, model, root, store=store, sampling=SAMPLING, max_steps=20)
    with model:
        result = agent.run(task.prompt)
    observations = [m.content for m in result.state.messages if m.role == "tool"]
    return result.status, env.check(result.answer), observations


def _reference(task: Task) -> list[Turn]:
    return [call(name, **args) for name, args in task.solution] + [reply(task.answer)]


def _wrong(task: Task) -> list[Turn]:
    """The reference solution with one thing wrong, as a model might get it wrong."""
    calls = copy.deepcopy(list(task.solution))
    answer = task.answer
    if task.kind == "arithmetic":
        expected = next(n for n in numbers_in(task.answer))
        answer = f"The answer is {expected + 1}."
    elif task.kind == "lookup":
        answer = "It is Brightwater."
    elif task.kind == "files":
        for name, args in calls:
            if name == "write_file":
                args["content"] = "wrong 42"
    else:
        _, args = calls[0]
        field = next(k for k in args if k not in ("name", "order_id", "title"))
        value = args[field]
        args[field] = value + 1 if isinstance(value, int | float) else f"{value} x"
    return [call(name, **args) for name, args in calls] + [reply(answer)]


@pytest.fixture
def bench_store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "bench-runs.db")


# -- the suite --------------------------------------------------------------------------


def test_the_suite_has_enough_tasks_of_every_kind() -> None:
    assert len(TASKS) >= 40
    counts = Counter(t.kind for t in TASKS)
    assert set(counts) == set(KINDS) and len(KINDS) >= 4
    assert all(n >= 10 for n in counts.values())
    for kind in KINDS:
        assert {t.difficulty for t in TASKS if t.kind == kind} == {"easy", "multi"}
        assert SYSTEM_PROMPTS[kind]


def test_task_ids_are_unique() -> None:
    ids = [t.id for t in TASKS]
    assert len(ids) == len(set(ids))


def test_multi_step_tasks_need_several_calls_or_reasoning() -> None:
    for t in TASKS:
        if t.difficulty == "easy":
            assert len(t.solution) == 1, t.id
    lookups = [t for t in TASKS if t.kind == "lookup" and t.difficulty == "multi"]
    assert all(len(t.solution) >= 2 for t in lookups)


@pytest.mark.parametrize("task", [t for t in TASKS if t.kind in ("arithmetic", "lookup")])
def test_the_expected_answer_is_not_in_the_question(task: Task) -> None:
    """Echoing the question back must never pass the checker."""
    env = task.setup(Path("."))  # these kinds never touch their folder
    assert not env.check(task.prompt).ok


def test_the_training_split_takes_a_few_of_every_kind_and_holds_out_the_rest() -> None:
    train, test = as_cases("train"), as_cases("test")
    assert {c.id for c in train}.isdisjoint(c.id for c in test)
    assert len(train) + len(test) == len(TASKS)
    assert Counter(c.kind for c in train) == dict.fromkeys(KINDS, TRAIN_PER_KIND)
    assert {c.split for c in train} == {"train"} and {c.split for c in test} == {"test"}
    assert all(split_of(c.id) == "test" for c in test)
    # the limit is per kind within the split
    assert Counter(c.kind for c in as_cases("test", limit=2)) == dict.fromkeys(KINDS, 2)


def test_filters_select_by_kind_id_and_per_kind_limit() -> None:
    assert {t.kind for t in tasks(["lookup"])} == {"lookup"}
    limited = tasks(limit=2)
    assert Counter(t.kind for t in limited) == dict.fromkeys(KINDS, 2)
    assert [t.id for t in tasks(ids=["f04", "a01"])] == ["a01", "f04"]


# -- every task, end to end with the scripted model -------------------------------------


@pytest.mark.parametrize("task", TASKS, ids=[t.id for t in TASKS])
def test_the_reference_solution_passes(task: Task, tmp_path: Path, bench_store: RunStore) -> None:
    status, check, observations = _run_full(task, _reference(task), tmp_path, bench_store)
    assert status == "succeeded"
    assert check.ok, check.detail
    assert not [o for o in observations if o.startswith("Error")], observations


@pytest.mark.parametrize(
    "task", [t for t in TASKS if t.kind in ("arithmetic", "lookup")], ids=lambda t: t.id
)
def test_the_tools_themselves_lead_to_the_expected_answer(
    task: Task, tmp_path: Path, bench_store: RunStore
) -> None:
    """The last calculator result or knowledge-base entry of the reference holds the answer,
    so the expected answers are right and reachable with the tools."""
    _, _, observations = _run_full(task, _reference(task), tmp_path, bench_store)
    env = task.setup(tmp_path)
    assert env.check(observations[-1]).ok, observations


@pytest.mark.parametrize("task", TASKS, ids=[t.id for t in TASKS])
def test_a_wrong_solution_fails(task: Task, tmp_path: Path, bench_store: RunStore) -> None:
    status, check = _run(task, _wrong(task), tmp_path, bench_store)
    assert status == "succeeded"
    assert not check.ok


@pytest.mark.parametrize("task", TASKS, ids=[t.id for t in TASKS])
def test_answering_without_tools_fails(task: Task, tmp_path: Path, bench_store: RunStore) -> None:
    _, check = _run(task, [reply("I am not sure, sorry.")], tmp_path, bench_store)
    assert not check.ok


# -- checkers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected", "ok"),
    [
        ("The total is 1,234.", "1234", True),
        ("The total is 1234.0", "1234", True),
        ("That costs $1,234.00 in all", "1234", True),
        ("It reached -7 degrees", "-7", True),
        ("It rose to 13 degrees", "-13", False),
        ("The fuel costs 49.14 dollars", "49.14", True),
        ("The fuel costs about 49.1 dollars", "49.14", False),
        ("I get 12345", "1234", False),
        ("Order A-1043", "1043", False),
        ("", "1", False),
    ],
)
def test_answer_has_number(answer: str, expected: str, ok: bool) -> None:
    assert answer_has_number(answer, Decimal(expected)).ok is ok


def test_numbers_in_reads_grouping_commas_and_lists() -> None:
    assert numbers_in("1,234 and 5") == [Decimal(1234), Decimal(5)]
    assert numbers_in("1,2,3") == [Decimal(1), Decimal(2), Decimal(3)]
    assert numbers_in("no numbers") == []


@pytest.mark.parametrize(
    ("answer", "ok"),
    [
        ("It is Selmouth.", True),
        ("the capital is  SELMOUTH", True),
        ("Selmouthville is the capital", False),
        (None, False),
    ],
)
def test_answer_has_text(answer: str | None, ok: bool) -> None:
    assert answer_has_text(answer, "Selmouth").ok is ok


def test_saving_a_record_again_replaces_it(tmp_path: Path, bench_store: RunStore) -> None:
    task = next(t for t in TASKS if t.id == "e01")
    script = [
        call("save_record", name="Lena Park", age=43, city="Oslo"),
        call("save_record", name="lena park", age=34, city="Oslo"),
        reply("done"),
    ]
    _, check = _run(task, script, tmp_path, bench_store)
    assert check.ok, check.detail


def test_an_extra_record_fails(tmp_path: Path, bench_store: RunStore) -> None:
    task = next(t for t in TASKS if t.id == "e01")
    script = [*_reference(task)[:-1], call("save_record", name="X Y", age=1, city="Z")]
    _, check = _run(task, [*script, reply("done")], tmp_path, bench_store)
    assert not check.ok


def test_meeting_rooms_and_titles_are_compared_leniently(
    tmp_path: Path, bench_store: RunStore
) -> None:
    task = next(t for t in TASKS if t.id == "e04")
    script = [
        call("save_record", title="Budget Review meeting", date="2024-03-18", room="Room B12"),
        reply("done"),
    ]
    _, check = _run(task, script, tmp_path, bench_store)
    assert check.ok, check.detail


def test_a_changed_input_file_fails(tmp_path: Path, bench_store: RunStore) -> None:
    task = next(t for t in TASKS if t.id == "f04")
    script = [
        call("write_file", path="a.txt", content="alpha one"),
        call("write_file", path="b.txt", content="alpha one"),
        reply("done"),
    ]
    _, check = _run(task, script, tmp_path, bench_store)
    assert not check.ok and "a.txt" in check.detail


def test_an_unknown_lookup_is_a_tool_error(tmp_path: Path, bench_store: RunStore) -> None:
    task = next(t for t in TASKS if t.id == "l01")
    model = ScriptedModel([call("lookup", name="Atlantis"), reply("unknown")])
    agent, _ = build_agent(task, model, tmp_path, store=bench_store, sampling=SAMPLING, max_steps=8)
    result = agent.run(task.prompt)
    tool_message = next(m for m in result.state.messages if m.role == "tool")
    assert tool_message.content.startswith("Error: no entry for 'Atlantis'")


def test_lookup_names_ignore_case_and_a_leading_article(
    tmp_path: Path, bench_store: RunStore
) -> None:
    task = next(t for t in TASKS if t.id == "l01")
    script = [call("lookup", name="the silent harbor"), reply(task.answer)]
    _, check = _run(task, script, tmp_path, bench_store)
    assert check.ok


# -- the runner's bookkeeping (no models) -----------------------------------------------
