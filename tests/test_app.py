"""The app factory's database setup."""

import flask_migrate
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from freshcom_customers.app import create_app
from freshcom_customers.extensions import db
from freshcom_customers.models import Account


def test_sqlite_savepoints_roll_back_alone_and_foreign_keys_hold(tmp_path, app_config):
    app = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'app.sqlite'}"})
    with app.app_context():
        flask_migrate.upgrade()
        # A session of this app's own engine: the autouse fixture has swapped db.session.
        with Session(db.engine) as session:
            # pysqlite alone makes a SAVEPOINT that opens the transaction commit on release.
            with session.begin_nested():
                session.add(Account(name="Released", mode="live"))
            session.rollback()
            assert session.scalars(select(Account.name)).all() == []
            session.add(Account(name="Kept", mode="live"))
            savepoint = session.begin_nested()
            session.add(Account(name="Dropped", mode="live"))
            session.flush()
            savepoint.rollback()
            session.commit()
            assert session.scalars(select(Account.name)).all() == ["Kept"]
            assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
        db.engine.dispose()
