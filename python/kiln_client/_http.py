"""The connection to a Kiln server: where it is, the token, and errors as the server words them."""
import os

import requests


class KilnError(Exception):
    """A refusal from the server: `error_code` (e.g. INVALID_PARAMETER_VALUE) and its message."""

    def __init__(self, error_code, message, status=None):
        super().__init__(f"{error_code}: {message}")
        self.error_code = error_code
        self.message = message
        self.status = status


class Connection:
    def __init__(self, host=None, token=None):
        host = host or os.environ.get("KILN_URL") or os.environ.get("DATABRICKS_HOST")
        if not host:
            raise ValueError("Say which Kiln server to use: set KILN_URL (or DATABRICKS_HOST), or pass host=")
        self.host = host.rstrip("/")
        self.token = token or os.environ.get("KILN_TOKEN") or os.environ.get("DATABRICKS_TOKEN")
        self.session = requests.Session()
        if self.token:
            self.session.headers["Authorization"] = f"Bearer {self.token}"

    def call(self, method, path, **kwargs):
        r = self.session.request(method, self.host + path, timeout=kwargs.pop("timeout", 600), **kwargs)
        if r.status_code >= 400:
            try:
                body = r.json()
                raise KilnError(body.get("error_code", "ERROR"), body.get("message", r.text), r.status_code)
            except ValueError:
                raise KilnError("ERROR", r.text or r.reason, r.status_code) from None
        return r
