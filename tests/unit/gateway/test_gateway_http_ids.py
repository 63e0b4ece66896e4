"""Request ids and shadow marks in the bytes the gateway writes."""

from __future__ import annotations

import os
import re
import string

from hypothesis import given
from hypothesis import strategies as st

from modelyard.gateway._http import (
    new_request_id,
    proxied_response,
    request_id_line,
    valid_request_id,
)
from modelyard.gateway._shadow import shadow_request

ALLOWED = string.ascii_letters + string.digits + "._:-"
HEX32 = re.compile(rb"[0-9a-f]{32}")


@given(st.text(alphabet=ALLOWED, min_size=1, max_size=128))
def test_sane_ids_are_kept(value: str) -> None:
    assert valid_request_id(value.encode())


@given(
    st.text(alphabet=ALLOWED, max_size=60),
    st.characters(exclude_characters=ALLOWED),
    st.text(alphabet=ALLOWED, max_size=60),
)
def test_ids_with_any_other_character_are_replaced(before: str, bad: str, after: str) -> None:
    assert not valid_request_id((before + bad + after).encode())


def test_ids_must_have_1_to_128_characters() -> None:
    assert not valid_request_id(b"")
    assert valid_request_id(b"a" * 128)
    assert not valid_request_id(b"a" * 129)
    assert not valid_request_id(b"abc\n")


def test_new_ids_are_unique_hex_across_blocks() -> None:
    ids = [new_request_id() for _ in range(1000)]  # many 64-id blocks
    assert all(HEX32.fullmatch(i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert request_id_line(ids[0]) == b"x-request-id: " + ids[0] + b"\r\n"


def test_a_forked_child_draws_its_own_ids() -> None:
    new_request_id()  # the parent holds a block
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, new_request_id())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64)
    os.close(read)
    assert HEX32.fullmatch(child)
    assert child != new_request_id()


def test_the_replicas_own_request_id_is_replaced_by_the_gateways() -> None:
    headers = [(b"Content-Type", b"application/json"), (b"X-Request-ID", b"echoed")]
    data = proxied_response(
        200, headers, b"{}", b"x-tag: 1\r\n", False, False, b"x-request-id: a\r\n"
    )
    head = data.split(b"\r\n\r\n")[0].lower()
    assert head.count(b"x-request-id") == 1
    assert b"x-request-id: a" in head
    assert data.endswith(b"\r\n\r\n{}")


@given(
    st.sampled_from([b"GET", b"POST", b"HEAD"]),
    st.binary(max_size=64).map(lambda b: b"/" + b.replace(b"\r", b"").replace(b"\n", b"")),
    st.binary(max_size=200),
)
def test_a_shadow_copy_is_the_request_plus_one_header(
    method: bytes, target: bytes, body: bytes
) -> None:
    request = method + b" " + target + b" HTTP/1.1\r\nx-request-id: r\r\n\r\n" + body
    copy = shadow_request(request)
    line, _, rest = copy.partition(b"\r\n")
    assert line == method + b" " + target + b" HTTP/1.1"
    assert rest == b"x-modelyard-shadow: 1\r\nx-request-id: r\r\n\r\n" + body
