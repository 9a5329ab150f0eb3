"""Chec ids: cstmr_/ord_ and the native UUID in base62, reversible without a lookup table."""

import uuid

import pytest

from freshcom_customers.chec import ids


@pytest.mark.parametrize(
    "value", [uuid.UUID(int=0), uuid.UUID(int=2**128 - 1), *(uuid.uuid4() for _ in range(20))]
)
def test_an_id_decodes_to_its_uuid(value):
    customer_id, order_id = ids.customer_id(value), ids.order_id(value)

    assert customer_id.startswith("cstmr_") and order_id.startswith("ord_")
    assert len(customer_id) == len("cstmr_") + 22
    assert customer_id[6:].isalnum() and customer_id[6:].isascii()
    assert ids.decode(ids.CUSTOMER, customer_id) == value
    assert ids.decode(ids.ORDER, order_id) == value


def test_every_uuid_has_one_id():
    assert ids.customer_id(uuid.UUID(int=0)) == "cstmr_" + "0" * 22
    assert ids.customer_id(uuid.UUID(int=61)) == "cstmr_" + "0" * 21 + "z"
    assert ids.decode(ids.CUSTOMER, "cstmr_z") is None  # no leading zeros, no second id


@pytest.mark.parametrize(
    "public_id",
    [
        "",
        "null",
        "cstmr_",
        "ord_0000000000000000000000",  # an order's id is not a customer's
        "cstmr_000000000000000000000",  # 21 digits
        "cstmr_00000000000000000000000",  # 23 digits
        "cstmr_000000000000000000000-",
        "cstmr_00000000000000000000٣",  # a digit, but not an ASCII one
        "cstmr_zzzzzzzzzzzzzzzzzzzzzz",  # more than 128 bits
        "CSTMR_0000000000000000000000",
        str(uuid.uuid4()),
    ],
)
def test_anything_else_decodes_to_none(public_id):
    assert ids.decode(ids.CUSTOMER, public_id) is None
