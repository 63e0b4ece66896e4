"""Manifests: validation, canonical JSON and its round trip."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard.artifacts import Manifest, ManifestEntry
from modelyard.core.errors import InvalidInput

D1 = hashlib.sha256(b"1").hexdigest()
D2 = hashlib.sha256(b"2").hexdigest()


def test_entries_are_sorted_normalized_and_looked_up() -> None:
    manifest = Manifest.from_entries(
        [ManifestEntry("plots//roc.png", D1, 10), ManifestEntry("./model.pkl", D2, 5)]
    )
    assert [e.path for e in manifest] == ["model.pkl", "plots/roc.png"]
    assert len(manifest) == 2
    assert manifest.total_size == 15
    assert manifest.get("plots/roc.png") == ManifestEntry("plots/roc.png", D1, 10)
    assert manifest.get("./model.pkl") == ManifestEntry("model.pkl", D2, 5)
    assert manifest.get("missing") is None
    with pytest.raises(InvalidInput):
        manifest.get("../escape")


def test_empty_manifest() -> None:
    manifest = Manifest()
    assert manifest.total_size == 0
    assert Manifest.from_json(manifest.to_json()) == manifest
    assert manifest.to_json() == b'{"entries":[],"version":1}'


def test_canonical_json_is_compact_with_sorted_keys() -> None:
    manifest = Manifest.from_entries([ManifestEntry("b/ü.txt", D1, 1), ManifestEntry("a", D2, 2)])
    assert (
        manifest.to_json()
        == (
            '{"entries":['
            f'{{"digest":"{D2}","path":"a","size":2}},'
            f'{{"digest":"{D1}","path":"b/ü.txt","size":1}}'
            '],"version":1}'
        ).encode()
    )


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([("a", D1, 1), ("./a", D2, 2)], "more than once"),
        ([("a", D1, 1), ("a/b", D2, 2)], "is a file and also the directory"),
        ([("../a", D1, 1)], "'..'"),
        ([("a", "ABC", 1)], "digest"),
        ([("a", D1, -1)], "size"),
        ([("a", D1, True)], "size"),
        ([("a", D1, 1.5)], "size"),
    ],
)
def test_invalid_entries_are_rejected(entries: list[tuple[str, str, int]], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        Manifest.from_entries(ManifestEntry(*e) for e in entries)


def _doc(**overrides: object) -> bytes:
    doc: dict[str, object] = {"version": 1, "entries": [{"path": "a", "digest": D1, "size": 1}]}
    doc.update(overrides)
    return json.dumps(doc).encode()


def _entry(**overrides: object) -> bytes:
    entry: dict[str, object] = {"path": "a", "digest": D1, "size": 1}
    entry.update(overrides)
    return _doc(entries=[entry])


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[]",
        b"null",
        b'{"entries":[]}',
        _doc(version=2),
        _doc(version=True),
        _doc(extra=1),
        _doc(entries={}),
        _doc(entries=[[]]),
        _entry(size="1"),
        _entry(size=None),
        _entry(size=-5),
        _entry(size=1e100),
        _entry(path=1),
        _entry(path="a//b"),
        _entry(path="/abs"),
        _entry(digest=D1.upper()),
        _entry(extra="x"),
        _doc(entries=[{"path": "a", "digest": D1}]),
        b'{"version":1,"entries":[{"path":"a","digest":"' + D1.encode() + b'","size":NaN}]}',
        _doc(
            entries=[{"path": "a", "digest": D1, "size": 1}, {"path": "a", "digest": D2, "size": 2}]
        ),
    ],
)
def test_malformed_json_is_invalid_input(data: bytes) -> None:
    with pytest.raises(InvalidInput, match=r"manifest|size|digest|path"):
        Manifest.from_json(data)


_segment = st.text(
    alphabet=st.characters(
        codec="utf-8", categories=["L", "N", "P", "S"], exclude_characters="/\\:"
    ),
    min_size=1,
    max_size=12,
).filter(lambda s: s not in (".", ".."))
_path = st.lists(_segment, min_size=1, max_size=4).map("/".join)
_entries = st.lists(
    st.builds(
        ManifestEntry,
        path=_path,
        digest=st.binary(max_size=8).map(lambda b: hashlib.sha256(b).hexdigest()),
        size=st.integers(min_value=0, max_value=2**62),
    ),
    max_size=12,
    unique_by=lambda e: e.path,
)


def _buildable(entries: list[ManifestEntry]) -> bool:
    paths = {e.path for e in entries}
    return not any(
        "/".join(e.path.split("/")[:i]) in paths
        for e in entries
        for i in range(1, e.path.count("/") + 1)
    )


@given(_entries.filter(_buildable), st.randoms())
def test_json_round_trip_is_exact_and_order_independent(
    entries: list[ManifestEntry], rnd: object
) -> None:
    manifest = Manifest.from_entries(entries)
    data = manifest.to_json()
    assert Manifest.from_json(data) == manifest
    assert Manifest.from_json(data).to_json() == data
    shuffled = list(entries)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert Manifest.from_entries(shuffled).to_json() == data
    assert manifest.total_size == sum(e.size for e in entries)
