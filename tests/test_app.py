"""The app factory's database setup."""

import flask_migrate
from sqlalchemy import func, select

from freshcom_customers.app import create_app
from freshcom_customers.extensions import db
from freshcom_customers.models import Account


def test_sqlite_savepoints_roll_back_alone_and_foreign_keys_hold(tmp_path, app_config):
    app = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'app.sqlite'}"})
    with app.app_context():
        flask_migrate.upgrade()
        try:
            db.session.add(Account(name="Kept", mode="live"))
            with db.session.begin_nested():
                db.session.add(Account(name="Kept", mode="live"))
            savepoint = db.session.begin_nested()
            db.session.add(Account(name="Dropped", mode="live"))
            db.session.flush()
            savepoint.rollback()
            db.session.commit()
            names = db.session.scalars(select(Account.name).order_by(Account.name)).all()
            assert names == ["Kept", "Kept"]
            assert db.session.execute(db.text("PRAGMA foreign_keys")).scalar() == 1
            assert db.session.scalar(select(func.count()).select_from(Account)) == 2
        finally:
            db.session.remove()
            db.engine.dispose()
