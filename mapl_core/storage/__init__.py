"""Versioned table storage."""
