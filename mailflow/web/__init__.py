"""The daemon's web edge: a Starlette app (`app.py`) served by uvicorn inside the daemon's own
event loop (`server.py`), with partner callbacks recorded by group commit (`commit.py`), the
candidate's consent page (`consent_page.py`, its HTML in `consent_html.py`), `/metrics` behind
the admin token (`metrics.py`) and the admin pages under `/admin` (`admin/`)."""
