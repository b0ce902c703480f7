"""Constrained field types shared by the envelope and the OCPP payload models.

Every constraint here runs inside pydantic-core (Rust): decoding validates many thousands of records a second,
and a Python validator per field would cost more than all the rest of the parsing.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from pydantic import ConfigDict, Field, GetCoreSchemaHandler, GetJsonSchemaHandler, WithJsonSchema
from pydantic_core import core_schema

# RFC 3339 `date-time`, except that the offset may be missing (then the time is UTC, as chargers often send it).
# The shape is checked here, by pattern; the ranges (month 13, February 30, second 60, offsets of 24 hours) by
# datetime.fromisoformat in the decoder, which alone would be more lenient than RFC 3339 (any separator
# character, "+0100", missing seconds). `[0-9]`, not `\d`: the Rust regex engine's `\d` matches any Unicode digit.
RFC3339_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})?$"
)

# The largest PostgreSQL `integer`: a connector id above it would fail a whole database batch later.
PG_INT_MAX = 2_147_483_647


class CheckedString:
    """A string checked against one pattern and length range, reported with one plain-language message.

    (pydantic's own message would quote the regular expression at the reader.)
    """

    def __init__(self, pattern: str, message: str, min_length: int | None = None, max_length: int | None = None):
        self.pattern, self.message, self.min_length, self.max_length = pattern, message, min_length, max_length

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.custom_error_schema(
            core_schema.str_schema(
                pattern=self.pattern, min_length=self.min_length, max_length=self.max_length, strict=True
            ),
            custom_error_type="string_shape",
            custom_error_message=self.message,
        )

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler) -> dict:
        out: dict[str, Any] = {"type": "string", "pattern": self.pattern}
        if self.min_length is not None:
            out["minLength"] = self.min_length
        if self.max_length is not None:
            out["maxLength"] = self.max_length
        return out


UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class _Uuid:
    """Marks a UUID field as "the 8-4-4-4-12 hexadecimal string form" (pydantic alone also takes urn:, {…}, …)."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        shape = CheckedString(UUID_PATTERN, "Input should be a UUID string like 0b9e5a4c-6f1d-4e2b-9a3c-5d7e8f901234")
        return core_schema.chain_schema(
            [shape.__get_pydantic_core_schema__(str, handler), core_schema.uuid_schema(strict=False)]
        )

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler) -> dict:
        return {"type": "string", "format": "uuid"}


UuidString = Annotated[UUID, _Uuid()]


# Kept a string here and converted by the decoder with datetime.fromisoformat: pydantic's datetime carries its
# own tzinfo class, whose conversion to UTC costs more than parsing the whole payload.
# In the JSON Schema, the pattern as well as the format: a validator that treats `format` as an annotation only
# (the JSON Schema default) still refuses what the decoder refuses for its shape.
Rfc3339String = Annotated[
    str,
    CheckedString(RFC3339_PATTERN, "Input should be an RFC 3339 date-time string like 2024-01-31T12:00:00Z"),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": RFC3339_PATTERN}),
]


def ocpp_string(max_length: int, description: str) -> Any:
    """A string field of an OCPP payload: as the official schema has it, only a maximum length."""
    return Annotated[str, Field(max_length=max_length, description=description)]


def ocpp_id(description: str) -> Any:
    """An OCPP integer id: the official schemas say only "integer"; we also bound it to 0…PG_INT_MAX."""
    return Annotated[int, Field(ge=0, le=PG_INT_MAX, description=description)]


def ocpp_integer(description: str, *, minimum: int | None = None) -> Any:
    """An OCPP integer that is not stored (a sequence number, a monitor id): as the official schema has it, with
    its `minimum` if it gives one (OCPP 2.1 does, 2.0.1 does not)."""
    return Annotated[int, Field(ge=minimum, description=description)]


# Payload models: strict types (no "1" for 1, no 1.0 for 1, no numbers for strings) and, like the official
# schemas, no properties beyond the listed ones.
# Optional fields are declared `name: T = None`, not `T | None`: absent is fine, but the official schemas refuse
# an explicit null, and pydantic does not validate defaults.
PAYLOAD_CONFIG = ConfigDict(strict=True, extra="forbid", frozen=True)
