"""A customer's orders: customers/{id}/orders and customers/{id}/orders/{order_id}."""

from freshcom_customers.chec import bp, ids, shapes, wire
from freshcom_customers.services import orders


@bp.get("/customers/<customer_id>/orders")
def list_orders(customer_id):
    customer = wire.session(customer_id).customer
    paging = wire.paging()
    rows, total = orders.customer_orders(
        customer, page=paging.page, size=paging.limit, newest_first=paging.newest_first
    )
    return wire.page_of([shapes.order(order) for order in rows], total, paging)


@bp.get("/customers/<customer_id>/orders/<order_id>")
def get_order(customer_id, order_id):
    session = wire.session(customer_id)
    order_uuid = ids.decode(ids.ORDER, order_id)
    return shapes.order(orders.get_order(session.account, order_uuid, visible_to=session.customer.id))
