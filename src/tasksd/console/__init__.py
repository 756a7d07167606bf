"""The web console at ``/console`` on the HTTP port: server-rendered pages over the API.

``app`` serves the pages (sessions, sign-in, CSRF), ``pages`` reads and changes data through
the in-process REST API (``client``), ``render`` escapes and lays out HTML, ``history`` keeps
the recent stats samples behind each queue's chart. ``static/`` holds the one script (confirm
dialogs, auto-refresh) and the style sheet; nothing is built and nothing is fetched from
elsewhere.
"""

from tasksd.console.app import Console

__all__ = ["Console"]
