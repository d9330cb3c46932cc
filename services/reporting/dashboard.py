"""The dashboard's routes on the reporting API (GET /dashboard and its static files)."""
from pathlib import Path

from flask import Flask, Response, send_from_directory

STATIC = Path(__file__).parent / "static"

# The dashboard runs under a strict policy: only its own script and style files, data from its own
# API, no inline script, style or event handler, no framing, no plug-ins, no <base>, no referrer.
DASHBOARD_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                 "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
DASHBOARD_HEADERS = {
    "Content-Security-Policy": DASHBOARD_CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _hardened(resp: Response, cache: str) -> Response:
    """Set (not setdefault) the dashboard's security headers: they win over any API-wide defaults
    an after_request adds with setdefault."""
    for name, value in DASHBOARD_HEADERS.items():
        resp.headers[name] = value
    resp.headers["Cache-Control"] = cache
    return resp


def add_dashboard(app: Flask) -> None:
    @app.get("/dashboard")
    def dashboard():
        return _hardened(send_from_directory(STATIC, "dashboard.html"), "no-store")

    @app.get("/static/<path:name>")
    def static_files(name):
        # revalidated on every use (ETag), so a new release's script is picked up at once
        return _hardened(send_from_directory(STATIC, name), "no-cache")
