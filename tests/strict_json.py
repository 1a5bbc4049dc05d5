"""Test helper: JSON read as a strict (RFC 8259) parser reads it, refusing the bare NaN / Infinity / -Infinity tokens
Python's json writes by default; every file and line sqtool writes must pass it."""
import json


def strict_loads(text: str, where: str = "the JSON"):
    """json.loads of `text`; a NaN / Infinity / -Infinity token is a ValueError naming it and `where`."""
    def refuse(token):
        raise ValueError(f"not RFC 8259 JSON: {token} in {where}")
    return json.loads(text, parse_constant=refuse)
