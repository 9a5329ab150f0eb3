"""Models, one module per aggregate. Importing this package registers them all."""

from freshcom_customers.models.account import Account
from freshcom_customers.models.customer import CUSTOMER_STATUSES, Customer
from freshcom_customers.models.oauth import Client, RefreshToken, hash_secret
from freshcom_customers.models.user import MANAGED_ROLES, STAFF_ROLES, AccountMembership, User

__all__ = [
    "CUSTOMER_STATUSES",
    "MANAGED_ROLES",
    "STAFF_ROLES",
    "Account",
    "AccountMembership",
    "Client",
    "Customer",
    "RefreshToken",
    "User",
    "hash_secret",
]
