"""A customer's orders on the Chec face: customers/{id}/orders and customers/{id}/orders/{order_id}."""

from datetime import UTC, datetime, timedelta

import pytest

from freshcom_customers.chec import ids, shapes
from freshcom_customers.services import orders
from tests.chec.conftest import chec_id

DAY = timedelta(days=1)
START = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def place(session, account):
    """Create an order of a customer, placed days after START (or with no placed_at)."""

    def place(customer, day: int | None, **attrs):
        placed_at = START + day * DAY if day is not None else None
        order = orders.create_order(
            account.live,
            {"currency": "USD", "placed_at": placed_at, "line_items": [], **attrs},
            customer,
        )
        session.commit()
        return order

    return place


@pytest.fixture
def history(gia, place):
    """Five orders of Gia, placed on days 0 to 4, created in another order."""
    return {day: place(gia, day, code=f"G-{day}") for day in (2, 0, 4, 1, 3)}


def codes(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [order["customer_reference"] for order in response.get_json()["data"]]


def test_the_sdks_default_list_is_newest_first_with_its_pagination(chec, gia, history, jwt_for):
    response = chec.get(f"customers/{chec_id(gia)}/orders?sortBy=created_at&sortDirection=desc", jwt_for(gia))

    assert codes(response) == ["G-4", "G-3", "G-2", "G-1", "G-0"]
    assert response.get_json()["meta"] == {
        "pagination": {
            "total": 5,
            "count": 5,
            "per_page": 20,
            "current_page": 1,
            "total_pages": 1,
            "links": {},
        }
    }
    assert "_event" not in response.get_json()


def test_paging_and_sorting_as_the_sdk_merges_them(chec, gia, history, jwt_for):
    path = f"customers/{chec_id(gia)}/orders?sortBy=created_at&sortDirection=asc&limit=2&page=2"

    response = chec.get(path, jwt_for(gia))

    assert codes(response) == ["G-2", "G-3"]
    pagination = response.get_json()["meta"]["pagination"]
    assert {k: v for k, v in pagination.items() if k != "links"} == {
        "total": 5,
        "count": 2,
        "per_page": 2,
        "current_page": 2,
        "total_pages": 3,
    }
    prefix = f"http://localhost/chec/v1/customers/{chec_id(gia)}/orders?sortBy=created_at&sortDirection=asc&limit=2"
    assert pagination["links"] == {"previous": f"{prefix}&page=1", "next": f"{prefix}&page=3"}


def test_sort_by_created_is_created_at(chec, gia, history, jwt_for):
    jwt = jwt_for(gia)
    base = f"customers/{chec_id(gia)}/orders"

    assert codes(chec.get(f"{base}?sortBy=created&sortDirection=asc", jwt)) == [
        "G-0",
        "G-1",
        "G-2",
        "G-3",
        "G-4",
    ]
    assert codes(chec.get(f"{base}?sortBy=created&sortDirection=DESC", jwt))[0] == "G-4"
    assert codes(chec.get(base, jwt))[0] == "G-4"  # no parameters: newest first


def test_an_order_without_placed_at_was_placed_when_it_was_stored(chec, gia, history, place, jwt_for):
    place(gia, None, code="G-now")

    assert codes(chec.get(f"customers/{chec_id(gia)}/orders", jwt_for(gia)))[0] == "G-now"


def test_a_page_past_the_end_is_empty(chec, gia, history, jwt_for):
    response = chec.get(f"customers/{chec_id(gia)}/orders?limit=2&page=4", jwt_for(gia))

    assert codes(response) == []
    pagination = response.get_json()["meta"]["pagination"]
    assert (pagination["count"], pagination["total"], pagination["total_pages"]) == (0, 5, 3)
    assert set(pagination["links"]) == {"previous"}


def test_limit_defaults_to_20_and_goes_up_to_200(chec, gia, place, jwt_for):
    for day in range(21):
        place(gia, day)
    jwt = jwt_for(gia)

    default = chec.get(f"customers/{chec_id(gia)}/orders", jwt).get_json()
    assert (len(default["data"]), default["meta"]["pagination"]["total_pages"]) == (20, 2)
    assert default["meta"]["pagination"]["links"]["next"].endswith("?page=2")
    most = chec.get(f"customers/{chec_id(gia)}/orders?limit=200", jwt).get_json()
    assert (len(most["data"]), most["meta"]["pagination"]["per_page"]) == (21, 200)


@pytest.mark.parametrize(
    ("query", "errors"),
    [
        ("limit=201", {"limit": ["limit must be a whole number from 1 to 200."]}),
        ("limit=0", {"limit": ["limit must be a whole number from 1 to 200."]}),
        ("limit=ten", {"limit": ["limit must be a whole number from 1 to 200."]}),
        ("page=0", {"page": ["page must be a whole number from 1 to 1000000000."]}),
        ("page=-1", {"page": ["page must be a whole number from 1 to 1000000000."]}),
        ("page=99999999999999999999", {"page": ["page must be a whole number from 1 to 1000000000."]}),
        ("sortBy=total", {"sortBy": ["sortBy must be created_at or created."]}),
        ("sortDirection=up", {"sortDirection": ["sortDirection must be asc or desc."]}),
    ],
)
def test_bad_paging_is_a_validation_error(chec, gia, jwt_for, query, errors):
    response = chec.get(f"customers/{chec_id(gia)}/orders?{query}", jwt_for(gia))

    assert response.status_code == 422
    assert response.get_json()["error"] == {
        "type": "validation",
        "message": "The given data was invalid.",
        "errors": errors,
    }


def test_the_list_holds_only_the_customers_own_orders(chec, gia, roy_customer, history, place, jwt_for):
    place(roy_customer, 9, code="R-9")

    assert "R-9" not in codes(chec.get(f"customers/{chec_id(gia)}/orders", jwt_for(gia)))
    assert codes(chec.get(f"customers/{chec_id(roy_customer)}/orders", jwt_for(roy_customer))) == ["R-9"]


def test_get_order_is_the_order_object(chec, gia, place, jwt_for):
    line_items = [
        {"name": "Kettle", "sku": "K-1", "quantity": 2, "unit_price_cents": 123450, "total_cents": 246900},
        {"name": "Tea", "quantity": 1, "unit_price_cents": 500, "total_cents": 500},
    ]
    order = place(
        gia,
        3,
        code="G-3",
        status="closed",
        payment_status="paid",
        fulfillment_status="fulfilled",
        line_items=line_items,
        sub_total_cents=247400,
        shipping_cents=1000,
        tax_cents=2474,
        total_cents=250874,
    )

    response = chec.get(f"customers/{chec_id(gia)}/orders/{ids.order_id(order.id)}", jwt_for(gia))

    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == ids.order_id(order.id)
    assert body["customer_reference"] == "G-3"
    assert body["created"] == int((START + 3 * DAY).timestamp())
    assert (body["status"], body["status_payment"], body["status_fulfillment"]) == (
        "closed",
        "paid",
        "fulfilled",
    )
    assert body["currency"] == {"code": "USD", "symbol": "$"}
    assert body["order_value"] == {
        "raw": 2508.74,
        "formatted": "2,508.74",
        "formatted_with_symbol": "$2,508.74",
        "formatted_with_code": "2,508.74 USD",
    }
    assert body["order"]["subtotal"]["formatted_with_symbol"] == "$2,474.00"
    assert body["order"]["total"] == body["order_value"]
    assert body["order"]["shipping"]["price"]["raw"] == 10.0
    assert body["tax"]["amount"]["formatted"] == "24.74"
    kettle, tea = body["order"]["line_items"]
    assert (kettle["product_name"], kettle["product_sku"], kettle["quantity"]) == ("Kettle", "K-1", 2)
    assert kettle["price"]["formatted"] == "1,234.50"
    assert kettle["line_total"]["raw"] == 2469.0
    assert (tea["product_sku"], tea["line_total"]["formatted_with_symbol"]) == (None, "$5.00")
    assert body["customer"] == chec.get(f"customers/{chec_id(gia)}", jwt_for(gia)).get_json()


def test_another_customers_order_and_malformed_ids_are_not_found(chec, gia, roy_customer, place, jwt_for):
    roys = place(roy_customer, 1)
    jwt = jwt_for(gia)
    not_found = {"status_code": 404, "error": {"type": "not_found", "message": "Order not found."}}

    for order_id in (
        ids.order_id(roys.id),
        ids.customer_id(roys.id),
        "ord_",
        "ord_zzzzzzzzzzzzzzzzzzzzzz",
        "1",
    ):
        assert chec.get(f"customers/{chec_id(gia)}/orders/{order_id}", jwt).get_json() == not_found


@pytest.mark.parametrize(
    ("cents", "currency", "raw", "formatted", "with_symbol"),
    [
        (0, "USD", 0.0, "0.00", "$0.00"),
        (150000, "EUR", 1500.0, "1,500.00", "€1,500.00"),
        (1500, "JPY", 1500, "1,500", "¥1,500"),
        (12345, "KWD", 12.345, "12.345", "KWD 12.345"),
        (995, "CHF", 9.95, "9.95", "CHF 9.95"),
    ],
)
def test_prices_use_the_currencys_minor_units_and_symbol(cents, currency, raw, formatted, with_symbol):
    price = shapes.price(cents, currency)

    assert price == {
        "raw": raw,
        "formatted": formatted,
        "formatted_with_symbol": with_symbol,
        "formatted_with_code": f"{formatted} {currency}",
    }
    assert type(price["raw"]) is type(raw)
