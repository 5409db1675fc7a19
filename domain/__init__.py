"""Switchboard's pure core: models, errors, ports and services (stdlib and attrs only)."""
