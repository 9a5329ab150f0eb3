"""Logs and security events."""
