"""Extensions, created unbound and bound in the app factory."""

from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from freshcom_customers.orm import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
mail = Mail()
