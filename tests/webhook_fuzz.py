"""Hostile but signed webhook bodies, for the fuzz test and `bench/reliability.py`.

Every body starts from a real payload shape (`tests/payloads`) and has parts replaced with
whatever JSON can hold: objects where strings belong, lists for `action`, numbers as strings,
values nested up to a thousand levels, huge and empty strings, control characters. Framing is
broken too: bodies that are not JSON, not an object, truncated, or in another encoding.
"""

from __future__ import annotations

import json

from hypothesis import strategies as st

from tests.payloads import event_of, load, names

ROUTED_FIXTURES = [name for name in names() if event_of(name) != "ping"]
DEEP = 990  # below the JSON decoder's own limit (1024), above what recursion copes with


class Deep:
    """A value nested `depth` levels: too deep for Python's json to write, so `dumps` spells it
    out as text."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.marker = f"@@deep-{id(self)}@@"

    def text(self) -> str:
        opening = "".join('[' if level % 2 else '{"a":' for level in range(self.depth))
        closing = "".join(']' if level % 2 else '}' for level in reversed(range(self.depth)))
        return opening + '"x"' + closing


def dumps(payload: object) -> bytes:
    """JSON text of a payload that may hold `Deep` values."""
    deep: list[Deep] = []

    def default(value: object) -> str:
        if isinstance(value, Deep):
            deep.append(value)
            return value.marker
        raise TypeError(type(value).__name__)

    text = json.dumps(payload, default=default)
    for value in deep:
        text = text.replace(json.dumps(value.marker), value.text())
    return text.encode()


json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False), st.text(max_size=50),
    st.sampled_from(["", "backend", "/backend help", "/backend cancel", "labeled", "created",
                     "submitted", "\x00", "‮", "a" * 100_000]),
)
json_value = st.recursive(
    json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                       st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=20,
) | st.builds(Deep, st.sampled_from([DEEP, 200]))


def _paths(value: object, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside a payload (dict keys and list indexes)."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:3]):
            found += _paths(item, (*prefix, index))
    return found


def _replace(payload: dict, path: tuple, value: object) -> dict:
    target = payload
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return payload


@st.composite
def mutated_payload(draw) -> tuple[str, bytes]:
    """(event, body): a real payload with a few of its values replaced."""
    name = draw(st.sampled_from(ROUTED_FIXTURES))
    payload = load(name)
    paths = _paths(payload)
    # The fields the routing reads first are the likeliest to trip it.
    hot = [p for p in paths if p[0] in ("action", "label", "issue", "comment", "sender",
                                        "repository", "installation", "pull_request", "review")]
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from(hot or paths))
        try:
            payload = _replace(payload, path, draw(json_value))
        except (KeyError, IndexError, TypeError):
            continue  # an earlier replacement removed the place
    return event_of(name), dumps(payload)


broken_framing = st.one_of(
    st.binary(max_size=200),
    st.just(b"[" * 2000 + b"]" * 2000),
    st.just(b'{"action": "labeled"'),
    st.just(json.dumps([1, 2, 3]).encode()),
    st.just(json.dumps("a string").encode()),
    st.just(dumps({"zen": Deep(DEEP), "hook_id": 1})),
    st.just("{\"action\": \"labeled\"}".encode("utf-16")),
)


@st.composite
def hostile_delivery(draw) -> tuple[str, bytes]:
    """(event, body) for the webhook: a mutated real payload, or broken framing under any event."""
    if draw(st.integers(min_value=0, max_value=4)) == 0:
        event = draw(st.sampled_from(["issues", "issue_comment", "ping", "push",
                                      "pull_request_review", "something_new"]))
        return event, draw(broken_framing)
    return draw(mutated_payload())
