"""Homeport: a self-hosted home for contacts, calendars, to-dos and files that never loses data."""

__version__ = "0.1.0"
