"""Extensions, created unbound and bound in the app factory.

The database's ``db`` is made beside the models' base class (models/base.py), where the
models can import it without importing this module.
"""

from flask_mail import Mail
from flask_migrate import Migrate

from freshcom_customers.models.base import db

__all__ = ["db", "mail", "migrate"]

migrate = Migrate()
mail = Mail()
