"""Models, one module per aggregate. Importing this package registers them all."""

from freshcom_customers.models.account import Account
from freshcom_customers.models.address import MAX_ADDRESSES, Address
from freshcom_customers.models.customer import CUSTOMER_STATUSES, Customer, CustomerCount
from freshcom_customers.models.customer_search import CustomerSearchTerm
from freshcom_customers.models.integration import (
    ACTORS,
    DELIVERY_STATUSES,
    HISTORY_EVENTS,
    WEBHOOK_EVENTS,
    CustomerEvent,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from freshcom_customers.models.oauth import Client, RefreshToken, hash_secret
from freshcom_customers.models.order import FULFILLMENT_STATUSES, ORDER_STATUSES, PAYMENT_STATUSES, Order
from freshcom_customers.models.second_factor import Passkey, RecoveryCode
from freshcom_customers.models.session import SESSION_FACES, LoginSession
from freshcom_customers.models.token import TOKEN_PURPOSES, OneTimeToken
from freshcom_customers.models.user import AUTH_METHODS, MANAGED_ROLES, STAFF_ROLES, AccountMembership, User

__all__ = [
    "ACTORS",
    "AUTH_METHODS",
    "CUSTOMER_STATUSES",
    "DELIVERY_STATUSES",
    "FULFILLMENT_STATUSES",
    "HISTORY_EVENTS",
    "MANAGED_ROLES",
    "MAX_ADDRESSES",
    "ORDER_STATUSES",
    "PAYMENT_STATUSES",
    "SESSION_FACES",
    "STAFF_ROLES",
    "TOKEN_PURPOSES",
    "WEBHOOK_EVENTS",
    "Account",
    "AccountMembership",
    "Address",
    "Client",
    "Customer",
    "CustomerCount",
    "CustomerEvent",
    "CustomerSearchTerm",
    "LoginSession",
    "OneTimeToken",
    "Order",
    "Passkey",
    "RecoveryCode",
    "RefreshToken",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
    "hash_secret",
]
