"""Usernames and emails as people read them: one form to compare, one form to send mail to.

Two strings a person reads as the same name must not make two accounts: "ﬁnn" (a ligature)
and "finn", "full" in fullwidth letters and in plain ones, the Kelvin sign "K" and "k",
"straße" and "strasse". ``canonical`` maps each of them to one form: Unicode's compatibility
caseless matching (The Unicode Standard, section 3.13) in composed form,
NFKC(casefold(NFKC(s))). It stands for RFC 8265's UsernameCaseMapped profile (width
mapping, lower case, NFC) with two differences: NFKC rather than width mapping and NFC, so
ligatures and the other compatibility forms fold too; and full case folding rather than
lower case, so that "ß" meets "ss" as its readers expect. Unlike the profile it refuses
nothing: what a field may contain is decided at the edge.

Usernames are stored in their canonical form. An email is not: mail goes to the address as
typed (``email_address``), and its canonical form is only a key to compare by (the
email_key columns). Folding an address would send mail meant for "straße.de" to the
owner of "strasse.de".

Both functions are idempotent (f(f(s)) == f(s)), which migration 0007 relies on; that is
why they trim last: NFKC turns a leading "¨" (U+00A8) into a space and a combining mark.
"""

import unicodedata


def canonical(value: str | None) -> str | None:
    """The form two names are compared in: NFKC, case folded, NFKC, trimmed. None stays None."""
    if value is None:
        return None
    return _nfkc(_nfkc(value).casefold()).strip()


def email_address(value: str | None) -> str | None:
    """The form an email is stored and sent to: NFKC, lower case, trimmed. None stays None.

    canonical(email_address(s)) == canonical(s): the key never depends on which was stored.
    """
    if value is None:
        return None
    return _nfkc(_nfkc(value).lower()).strip()


def _nfkc(value: str) -> str:
    return unicodedata.normalize("NFKC", value)
