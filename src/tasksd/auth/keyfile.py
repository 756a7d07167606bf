"""Service account key files in the JSON format google-auth reads."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from tasksd.auth.policy import service_account_project
from tasksd.targets.tokens import new_signing_key


def key_file_info(email: str, token_uri: str) -> dict[str, Any]:
    """A new key of ``email``, as a key file's JSON object."""
    project = service_account_project(email) or email.partition("@")[2].split(".")[0]
    return {
        "type": "service_account",
        "project_id": project,
        "private_key_id": secrets.token_hex(20),
        "private_key": new_signing_key().decode(),
        "client_email": email,
        "client_id": str(secrets.randbelow(10**21)).zfill(21),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "",
        "universe_domain": "googleapis.com",
    }


def new_key_file(email: str, token_uri: str, path: str) -> None:
    """Write a new key of ``email`` to ``path``, readable by its owner only."""
    text = json.dumps(key_file_info(email, token_uri), indent=2) + "\n"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    Path(path).chmod(0o600)
