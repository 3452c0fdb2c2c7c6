"""The daemon's web edge: a Starlette app (`app.py`) served by uvicorn inside the daemon's own
event loop (`server.py`), with partner callbacks recorded by group commit (`commit.py`)."""
