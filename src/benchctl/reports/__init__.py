"""Certificates and exports, read from the store."""
