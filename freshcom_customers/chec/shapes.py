"""The Customer, Order and Price objects of the Chec face, and their JSON Schemas for the document."""

from datetime import datetime
from decimal import Decimal

from freshcom_customers.chec import ids
from freshcom_customers.http.contracts import NULLABLE_STRING, OBJECT, STRING, Shape, object_schema
from freshcom_customers.models import Customer, Order

SYMBOLS = {
    "USD": "$",
    "CAD": "$",
    "AUD": "$",
    "NZD": "$",
    "SGD": "$",
    "HKD": "$",
    "MXN": "$",
    "EUR": "€",
    "GBP": "£",
    "JPY": "¥",
    "CNY": "¥",
    "INR": "₹",
    "KRW": "₩",
    "BRL": "R$",
    "ZAR": "R",
    "CHF": "CHF",
    "SEK": "kr",
    "NOK": "kr",
    "DKK": "kr",
    "PLN": "zł",
}
# ISO 4217 minor units, where they are not 2: amounts are stored in minor units ("cents").
DECIMALS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF"), 0),
    **dict.fromkeys(("UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}


def customer(c: Customer) -> dict:
    return {
        "id": ids.customer_id(c.id),
        "external_id": c.code,
        "firstname": c.first_name,
        "lastname": c.last_name,
        "email": c.email,
        "phone": c.phone_number,
        "meta": c.custom_data or {},
        "created": _unix(c.inserted_at),
        "updated": _unix(c.updated_at),
    }


def order(o: Order) -> dict:
    """The order; created is when it was placed (placed_at, else when it was stored)."""
    currency = o.currency
    return {
        "id": ids.order_id(o.id),
        "customer_reference": o.code,
        "created": _unix(o.placed_at or o.inserted_at),
        "status": o.status,
        "status_payment": o.payment_status,
        "status_fulfillment": o.fulfillment_status,
        "currency": {"code": currency, "symbol": symbol(currency)},
        "order_value": price(o.total_cents, currency),
        "order": {
            "subtotal": price(o.sub_total_cents, currency),
            "total": price(o.total_cents, currency),
            "shipping": {"price": price(o.shipping_cents, currency)},
            "line_items": [_line_item(item, currency) for item in o.line_items],
        },
        "tax": {"amount": price(o.tax_cents, currency)},
        "customer": customer(o.customer) if o.customer is not None else None,
    }


def _line_item(item: dict, currency: str) -> dict:
    return {
        "product_name": item["name"],
        "product_sku": item["sku"],
        "quantity": item["quantity"],
        "price": price(item["unit_price_cents"], currency),
        "line_total": price(item["total_cents"], currency),
    }


def price(cents: int, currency: str) -> dict:
    """An amount in minor units as Chec shows it: raw in major units, and three formattings."""
    decimals = DECIMALS.get(currency, 2)
    amount = Decimal(cents).scaleb(-decimals)
    formatted = f"{amount:,.{decimals}f}"
    sign = symbol(currency)
    return {
        "raw": float(amount) if decimals else int(amount),
        "formatted": formatted,
        "formatted_with_symbol": f"{sign} {formatted}" if sign.isalpha() else f"{sign}{formatted}",
        "formatted_with_code": f"{formatted} {currency}",
    }


def symbol(currency: str) -> str:
    """The currency's symbol; its code for a currency without one here."""
    return SYMBOLS.get(currency, currency)


def _unix(moment: datetime) -> int:
    return int(moment.timestamp())


# JSON Schemas of what the functions above write (http/contracts.py).

CUSTOMER = Shape(
    "ChecCustomer",
    object_schema(
        {
            "id": {"type": "string", "pattern": "^cstmr_"},
            "external_id": NULLABLE_STRING,
            "firstname": NULLABLE_STRING,
            "lastname": NULLABLE_STRING,
            "email": NULLABLE_STRING,
            "phone": NULLABLE_STRING,
            "meta": OBJECT,
            "created": {"type": "integer"},
            "updated": {"type": "integer"},
        },
        ("id", "external_id", "firstname", "lastname", "email", "phone", "meta", "created", "updated"),
    ),
)
PRICE = Shape(
    "ChecPrice",
    object_schema(
        {
            "raw": {"type": "number"},
            "formatted": STRING,
            "formatted_with_symbol": STRING,
            "formatted_with_code": STRING,
        },
        ("raw", "formatted", "formatted_with_symbol", "formatted_with_code"),
    ),
)
ORDER = Shape(
    "ChecOrder",
    object_schema(
        {
            "id": {"type": "string", "pattern": "^ord_"},
            "customer_reference": NULLABLE_STRING,
            "created": {"type": "integer"},
            "status": STRING,
            "status_payment": STRING,
            "status_fulfillment": STRING,
            "currency": object_schema({"code": STRING, "symbol": STRING}, ("code", "symbol")),
            "order_value": PRICE,
            "order": object_schema(
                {
                    "subtotal": PRICE,
                    "total": PRICE,
                    "shipping": object_schema({"price": PRICE}),
                    "line_items": {"type": "array", "items": OBJECT},
                },
                ("subtotal", "total", "line_items"),
            ),
            "tax": object_schema({"amount": PRICE}),
            "customer": {"anyOf": [CUSTOMER, {"type": "null"}]},
        },
        ("id", "created", "status", "currency", "order_value", "order", "customer"),
    ),
)
