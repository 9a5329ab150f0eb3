"""The domain error tree. Services raise these; each wire face translates them once."""

from dataclasses import dataclass


class DomainError(Exception):
    """Base of every error a service raises on purpose."""


class NotFound(DomainError):
    """The thing does not exist, or the caller may not know that it does."""


class AccessDenied(DomainError):
    """The caller's role may not do this."""


class InvalidCredentials(DomainError):
    """Login or refresh failed. Never says why: no user enumeration."""


@dataclass(frozen=True)
class FieldError:
    field: str  # snake_case attribute, or a relationship name
    code: str  # required, taken, format, length, inclusion, invalid
    title: str


class ValidationFailed(DomainError):
    """The input breaks a rule; one FieldError per problem."""

    def __init__(self, *errors: FieldError):
        super().__init__(", ".join(f"{e.field}: {e.title}" for e in errors))
        self.errors = list(errors)


def invalid(field: str, code: str, title: str) -> ValidationFailed:
    """Build a ValidationFailed with a single field error."""
    return ValidationFailed(FieldError(field, code, title))


class WrongPassword(ValidationFailed):
    """The current password a signed-in user gave is wrong: a guess, counted like a failed login."""

    def __init__(self):
        super().__init__(FieldError("current_password", "invalid", "The current password is wrong."))


class Taken(ValidationFailed):
    """A unique value is already in use (the database said so)."""

    def __init__(self, field: str):
        super().__init__(
            FieldError(field, "taken", f"{field.replace('_', ' ').capitalize()} has already been taken.")
        )


class Unavailable(DomainError):
    """A dependency (the database) cannot be reached now: 503, and try again after retry_after seconds."""

    def __init__(self, what: str = "database", retry_after: int = 5):
        super().__init__(f"The {what} is unavailable; try again in a few seconds.")
        self.retry_after = retry_after


class InvalidToken(DomainError):
    """An access token is missing its signature, expired, revoked or its user is locked out."""
