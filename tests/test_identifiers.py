"""Usernames and emails compared as people read them (freshcom_customers/identifiers.py)."""

import sys

import pytest

from freshcom_customers.identifiers import canonical, email_address

# Pairs a person reads as one address: (plain, look-alike), and what each is stored as.
LOOK_ALIKES = [
    pytest.param("finn@x.test", "\ufb01nn@x.test", id="fi-ligature"),
    pytest.param("full@x.test", "\uff46\uff55\uff4c\uff4c@x.test", id="fullwidth"),
    pytest.param("strasse@x.test", "stra\u00dfe@x.test", id="sharp-s"),
    pytest.param("k@x.test", "\u212a@x.test", id="kelvin-sign"),
]


@pytest.mark.parametrize(("plain", "look_alike"), LOOK_ALIKES)
def test_look_alikes_have_one_canonical_form(plain, look_alike):
    assert canonical(look_alike) == canonical(plain.upper()) == canonical(f" {plain}\t") == plain


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        (" Roy@Example.COM ", "roy@example.com"),
        ("\ufb01nn@x.test", "finn@x.test"),
        ("\uff26\uff35\uff2c\uff2c@x.test", "full@x.test"),
        ("\u212a@x.test", "k@x.test"),
        # An address is not folded: mail for straße.de must not go to the owner of strasse.de.
        ("Stra\u00dfe@Stra\u00dfe.de", "stra\u00dfe@stra\u00dfe.de"),
    ],
)
def test_an_email_is_stored_as_typed_in_nfkc_and_lower_case(typed, stored):
    assert email_address(typed) == stored
    assert canonical(stored) == canonical(typed)


def test_none_stays_none():
    assert canonical(None) is None
    assert email_address(None) is None


@pytest.mark.parametrize("extra", ["", " \u0301"])
def test_both_forms_are_idempotent_for_every_code_point(extra):
    # Migration 0007 relies on it: a value kept by a collision is never another's canonical form.
    for code_point in range(sys.maxunicode + 1):
        if 0xD800 <= code_point <= 0xDFFF:
            continue
        value = chr(code_point) + extra
        folded, address = canonical(value), email_address(value)
        assert canonical(folded) == folded, hex(code_point)
        assert email_address(address) == address, hex(code_point)
        assert canonical(address) == folded, hex(code_point)
