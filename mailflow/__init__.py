"""mailflow: a recruiting mailbox becomes a talent pool; rejections carry a Career Relay link."""

__version__ = "0.1.0"
