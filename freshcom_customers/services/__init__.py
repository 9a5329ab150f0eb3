"""Use cases: values in, models out, domain errors raised. Services flush, never commit."""
