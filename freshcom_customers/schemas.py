"""Reading values off the wire, for every face and the CLI's files: key casing and schema loading.

Keys are lowerCamelCase on the wire (JSON:API attributes, CSV columns) and snake_case inside;
input takes either. A marshmallow schema checks shape and types only, and what it refuses
becomes one FieldError per problem, coded as API.md 3 lists the codes. The customer's
writable attributes are declared here once, for the API and the import's files alike.
"""

import functools
import re

from marshmallow import EXCLUDE, Schema, ValidationError, fields
from marshmallow.validate import Length, OneOf

from freshcom_customers.errors import FieldError, ValidationFailed
from freshcom_customers.models import CUSTOMER_STATUSES

_CAPITAL = re.compile(r"(?<!^)(?=[A-Z])")
# marshmallow's messages, by how they start, and the API's code for each.
_MESSAGE_CODES = (
    ("Missing data for required field", "required"),
    ("Field may not be null", "required"),
    ("Length must be", "length"),
    ("Shorter than minimum length", "length"),
    ("Longer than maximum length", "length"),
    ("Must be one of", "inclusion"),
    ("Not a valid email", "format"),
)


@functools.cache
def camelize(key: str) -> str:
    """snake_case (or camelCase) to lowerCamelCase."""
    head, *rest = key.split("_")
    return head + "".join(word.capitalize() for word in rest)


def underscore(key: str) -> str:
    """lowerCamelCase (or snake_case) to snake_case."""
    return _CAPITAL.sub("_", key).lower()


def load(schema: Schema, data: dict, *, partial: bool = False) -> dict:
    """Check data's shape and types with schema; unknown and read-only keys are dropped."""
    try:
        return schema.load(data, unknown=EXCLUDE, partial=partial)
    except ValidationError as e:
        raise ValidationFailed(*field_errors(e.messages)) from e


def field_errors(messages: dict) -> list[FieldError]:
    """marshmallow's messages, by field, as FieldErrors with the API's codes."""
    return [
        FieldError(field, _code(str(message)), str(message))
        for field, problems in messages.items()
        for message in (problems if isinstance(problems, list) else ["Invalid value."])
    ]


def _code(message: str) -> str:
    return next((code for prefix, code in _MESSAGE_CODES if message.startswith(prefix)), "invalid")


def _text(max_length: int):
    return fields.String(allow_none=True, validate=Length(max=max_length))


class CustomerInputSchema(Schema):
    """The attributes a client may write of a customer: api/customers.py and the import extend it."""

    status = fields.String(validate=OneOf(CUSTOMER_STATUSES))
    code = _text(64)
    name = _text(255)
    first_name = _text(255)
    last_name = _text(255)
    email = fields.Email(allow_none=True, validate=Length(max=254))
    phone_number = _text(32)
    label = _text(64)
    caption = _text(255)
    description = _text(10_000)
    custom_data = fields.Dict(keys=fields.String())
    username = fields.String(load_only=True, validate=Length(min=3, max=254))
    password = fields.String(load_only=True)
