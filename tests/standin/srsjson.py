"""JSON text exactly as SRS writes it (`SrsJsonAny::dumps`, srs_protocol_json.cpp).

SRS prints every non-integer number with `%.2f` (`"fragment":2.00`, `"alive":34.64`) and
escapes only `"`, `\\`, `\\b`, `\\f`, `\\n`, `\\r` and `\\t` in strings. Clients that
parse the JSON see a float where SRS writes `2.00`; the stand-in keeps that, so a client
that breaks on it breaks in tests too. Python values: int -> integer, float -> number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

JsonValue = None | bool | int | float | str | Mapping[str, "JsonValue"] | Sequence["JsonValue"]

_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


def dump_string(value: str) -> str:
    return '"' + "".join(_ESCAPES.get(ch, ch) for ch in value) + '"'


def dumps(value: JsonValue) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, str):
        return dump_string(value)
    if isinstance(value, Mapping):
        return "{" + ",".join(f'"{k}":{dumps(v)}' for k, v in value.items()) + "}"
    return "[" + ",".join(dumps(v) for v in value) + "]"
