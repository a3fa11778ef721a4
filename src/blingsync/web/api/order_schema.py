"""The order JSON in the OpenAPI document: `blingsync/schemas/order.schema.json`, the one
schema that documents an order wherever it leaves blingsync, published as the `Order`
component.

The file's internal references (`#/$defs/…`) would point into the OpenAPI document once the
schema sits inside it, so they are inlined (the definitions do not refer to themselves); the
JSON Schema meta keywords (`$schema`, `$id`, `$defs`) stay out. The schema is read from the
file, never copied: the API cannot document one shape and send another.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any

from pydantic import GetJsonSchemaHandler, RootModel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

_DEFS_PREFIX = "#/$defs/"


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(_DEFS_PREFIX):
        target = _inline(copy.deepcopy(defs[ref.removeprefix(_DEFS_PREFIX)]), defs)
        siblings = {key: _inline(value, defs) for key, value in node.items() if key != "$ref"}
        return {**target, **siblings}  # a sibling (a field's own description) wins over the def's
    return {key: _inline(value, defs) for key, value in node.items()}


@cache
def order_schema() -> dict[str, Any]:
    """The order schema with its definitions inlined, ready to sit inside another document."""
    text = (resources.files("blingsync") / "schemas" / "order.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    defs = schema.pop("$defs", {})
    for meta in ("$schema", "$id"):
        schema.pop(meta, None)
    inlined: dict[str, Any] = _inline(schema, defs)
    inlined["title"] = "Order"
    return inlined


class Order(RootModel[dict[str, Any]]):
    """An order as `blingsync.orderjson.order_json` writes it (see docs/order-json.md)."""

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return copy.deepcopy(order_schema())
