"""Health probe for Azure and the dev host: answers without touching any dependency (R16: up 24x7)."""

from __future__ import annotations

import azure.functions as func

from shared.entrypoints.http import json_response


def handle_health(req: func.HttpRequest) -> func.HttpResponse:
    return json_response({"status": "ok"})
