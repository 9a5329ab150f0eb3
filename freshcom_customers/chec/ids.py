"""Chec ids: a prefix (cstmr_, ord_) and the native UUID in base62, so no lookup table is needed.

The UUID's 128 bits are always written as 22 digits (62**22 > 2**128), leading zeros
included, so each UUID has exactly one id and each id one UUID. Anything that is not such an
id decodes to None, which the routes answer as not found.
"""

import uuid

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
WIDTH = 22
CUSTOMER = "cstmr_"
ORDER = "ord_"
_VALUES = {digit: value for value, digit in enumerate(ALPHABET)}


def encode(prefix: str, value: uuid.UUID) -> str:
    """The id of the UUID with this prefix."""
    number, digits = value.int, []
    for _ in range(WIDTH):
        number, digit = divmod(number, len(ALPHABET))
        digits.append(ALPHABET[digit])
    return prefix + "".join(reversed(digits))


def decode(prefix: str, public_id: str) -> uuid.UUID | None:
    """The UUID of an id with this prefix; None for anything else."""
    body = public_id.removeprefix(prefix)
    if body == public_id or len(body) != WIDTH or not all(digit in _VALUES for digit in body):
        return None
    number = 0
    for digit in body:
        number = number * len(ALPHABET) + _VALUES[digit]
    return uuid.UUID(int=number) if number < 1 << 128 else None


def customer_id(value: uuid.UUID) -> str:
    return encode(CUSTOMER, value)


def order_id(value: uuid.UUID) -> str:
    return encode(ORDER, value)
