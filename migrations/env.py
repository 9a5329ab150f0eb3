import logging
from contextlib import contextmanager
from logging.config import fileConfig

from alembic import context
from flask import current_app

from freshcom_customers.observability import logs

# this is the Alembic Config object, which provides
# access to the values within the .ini file in use.
config = context.config

# The app has configured logging (freshcom_customers/logs.py: JSON lines in production), so the
# migration's progress goes through its handler; alembic.ini's logging is for running without it.
# Keep the loggers that exist: migrating in a running process (the test suite does) must not
# silence the app's, security events included.
if logs.is_configured():
    for name in ("alembic", "flask_migrate"):
        logging.getLogger(name).setLevel(logging.INFO)
else:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")


def get_engine():
    return current_app.extensions["migrate"].db.engine


def get_engine_url():
    try:
        return get_engine().url.render_as_string(hide_password=False).replace("%", "%%")
    except AttributeError:
        return str(get_engine().url).replace("%", "%%")


# add your model's MetaData object here
# for 'autogenerate' support
# from myapp import mymodel
# target_metadata = mymodel.Base.metadata
config.set_main_option("sqlalchemy.url", get_engine_url())
target_db = current_app.extensions["migrate"].db

# other values from the config, defined by the needs of env.py,
# can be acquired:
# my_important_option = config.get_main_option("my_important_option")
# ... etc.


def get_metadata():
    if hasattr(target_db, "metadatas"):
        return target_db.metadatas[None]
    return target_db.metadata


def run_migrations_offline():
    """Run migrations in 'offline' mode.

    This configures the context with just a URL
    and not an Engine, though an Engine is acceptable
    here as well.  By skipping the Engine creation
    we don't even need a DBAPI to be available.

    Calls to context.execute() here emit the given string to the
    script output.

    """
    url = config.get_main_option("sqlalchemy.url")
    context.configure(url=url, target_metadata=get_metadata(), literal_binds=True)

    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    """Run migrations in 'online' mode.

    In this scenario we need to create an Engine
    and associate a connection with the context.

    """

    # this callback is used to prevent an auto-migration from being generated
    # when there are no changes to the schema
    # reference: http://alembic.zzzcomputing.com/en/latest/cookbook.html
    def process_revision_directives(context, revision, directives):
        if getattr(config.cmd_opts, "autogenerate", False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info("No changes in schema detected.")

    conf_args = current_app.extensions["migrate"].configure_args
    if conf_args.get("process_revision_directives") is None:
        conf_args["process_revision_directives"] = process_revision_directives

    connectable = get_engine()

    with connectable.connect() as connection, _sqlite_foreign_keys_off(connection):
        context.configure(connection=connection, target_metadata=get_metadata(), **conf_args)

        with context.begin_transaction():
            context.run_migrations()


@contextmanager
def _sqlite_foreign_keys_off(connection):
    """Migrate SQLite with its foreign keys off, as Alembic's batch mode requires.

    Batch mode recreates a table: it copies the rows, with their ids, drops the table and
    renames the copy. With foreign keys on (the app turns them on for every connection),
    dropping a table deletes its rows first, and the deletes cascade to the rows that refer
    to them: recreating users would detach every customer from its user and delete every
    refresh token. The pragma only works outside a transaction, so it is set on the
    driver's connection before Alembic begins one, and set back when the migrations end.
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    driver = connection.connection.driver_connection
    driver.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        if connection.in_transaction():
            connection.rollback()
        driver.execute("PRAGMA foreign_keys=ON")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
