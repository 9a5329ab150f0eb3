"""The package's arrows, read from the source (docs/architecture.md): the shared HTTP edge
knows no face and no service, and no face imports another (the native face's bearer check,
oauth2.require_oauth, aside). tests/services/test_layering.py checks the business layer."""

from pathlib import Path

import pytest

from tests.services.test_layering import PACKAGE, imported

FACES = ("api", "chec", "oauth2")
# Imports across faces, by face: the native routes are protected by the OAuth2 face's bearer check.
ALLOWED = {"api": {"oauth2"}}


def modules_of(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).glob("*.py"))


def packages_imported(path: Path) -> set[str]:
    """The freshcom_customers subpackages and top modules a module imports."""
    return {name.split(".")[1] for name in imported(path) if name.startswith("freshcom_customers.")}


@pytest.mark.parametrize("path", modules_of("http"), ids=lambda path: path.stem)
def test_the_http_edge_imports_no_face_and_no_service(path):
    assert not packages_imported(path) & {*FACES, "services", "cli"}


@pytest.mark.parametrize("face", FACES)
def test_no_face_imports_another(face):
    others = {name for path in modules_of(face) for name in packages_imported(path)} & set(FACES)
    assert others - {face} <= ALLOWED.get(face, set())
