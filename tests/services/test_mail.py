"""Email at start-up: production says so when it has no mail server to send through."""

import pytest

from tests.logcapture import app_factory, json_lines

PRODUCTION_DATABASE = "postgresql+psycopg://nobody@127.0.0.1:9/unused"  # never reached


@pytest.mark.parametrize(
    ("settings", "warned"),
    [
        ({"ENV": "production", "SQLALCHEMY_DATABASE_URI": PRODUCTION_DATABASE}, True),
        (
            {"ENV": "production", "SQLALCHEMY_DATABASE_URI": PRODUCTION_DATABASE, "MAIL_SERVER": "smtp.test"},
            False,
        ),
        ({"LOG_FORMAT": "json"}, False),  # development logs each email, link included
    ],
    ids=["production without a mail server", "production with one", "development"],
)
def test_production_warns_at_start_when_emails_would_only_be_logged(
    app, app_config, capsys, settings, warned
):
    capsys.readouterr()
    with app_factory(app, app_config) as make_app:
        make_app(**settings)
        lines = json_lines(capsys.readouterr().err)
    warnings = [line for line in lines if "FRESHCOM_MAIL_SERVER" in line["message"]]
    assert [w["level"] for w in warnings] == (["WARNING"] if warned else [])
    if warned:
        assert "password resets, email verification, login links" in warnings[0]["message"]
