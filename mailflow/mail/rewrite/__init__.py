"""Rejection rewrite: splice a Career Relay invitation into HR's own mail, byte-carefully."""
