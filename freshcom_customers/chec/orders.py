"""A customer's orders: customers/{id}/orders and customers/{id}/orders/{order_id}."""

from freshcom_customers.chec import bp, ids, shapes, wire
from freshcom_customers.chec.errors import ERROR, SESSION_ERRORS
from freshcom_customers.http.contracts import CHEC_BEARER, contract
from freshcom_customers.services import orders

ORDER_LIST = wire.page_shape("ChecOrderList", shapes.ORDER)


@bp.get("/customers/<customer_id>/orders")
@contract(
    "customer.getOrders",
    tag="Chec",
    responses={200: ORDER_LIST, 422: ERROR, **SESSION_ERRORS},
    security=CHEC_BEARER,
    errors=ERROR,
    query=wire.PAGING,
)
def list_orders(customer_id):
    customer = wire.session(customer_id).customer
    paging = wire.paging()
    rows, total = orders.customer_orders(
        customer, page=paging.page, size=paging.limit, newest_first=paging.newest_first
    )
    return wire.page_of([shapes.order(order) for order in rows], total, paging)


@bp.get("/customers/<customer_id>/orders/<order_id>")
@contract(
    "customer.getOrder",
    tag="Chec",
    responses={200: shapes.ORDER, **SESSION_ERRORS},
    security=CHEC_BEARER,
    errors=ERROR,
)
def get_order(customer_id, order_id):
    session = wire.session(customer_id)
    order_uuid = ids.decode(ids.ORDER, order_id)
    return shapes.order(orders.get_order(session.account, order_uuid, visible_to=session.customer.id))
