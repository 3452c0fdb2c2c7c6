"""The OpenAPI document of the partner-facing endpoints (`GET /openapi.json`), written by hand
from INTERFACE.md so that it says exactly what the endpoints do; `webhooks` describes what
mailflow itself sends the partner (the hand-over to `[career_relay] handover_url`)."""

from __future__ import annotations

from typing import Any

from mailflow.relay.callbacks import SIGNATURE_HEADER, STATUSES, TOLERANCE_SECONDS
from mailflow.relay.handover import HANDOVER_ITEMS


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def openapi(public_url: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "mailflow partner API", "version": "1",
                 "description": "Endpoints Career Relay calls on a company's mailflow."},
        "servers": [{"url": public_url}],
        "paths": {
            "/callbacks/career-relay": {"post": {
                "summary": "A candidate's Career Relay event",
                "description": (
                    f"Signed with `{SIGNATURE_HEADER}: t=<unix seconds>,v1=<hex>`, the hex "
                    "HMAC-SHA256 of `<t>.<raw body>` keyed with the shared secret. A timestamp "
                    f"more than {TOLERANCE_SECONDS} s away from the server's clock is refused. "
                    "Events are idempotent by `id`: a repeated id answers 200 and changes "
                    "nothing. A 2xx is sent only after the event is durably recorded; retry "
                    "anything else."),
                "parameters": [{"name": SIGNATURE_HEADER, "in": "header", "required": True,
                                "schema": {"type": "string",
                                           "pattern": "^t=[0-9]+(,v1=[0-9a-f]{64})+$"}}],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Event"}}}},
                "responses": {
                    "200": {"description": "Recorded (or recorded before: `duplicate`).",
                            "content": {"application/json": {"schema": {
                                "$ref": "#/components/schemas/Accepted"}}}},
                    "400": _error("The body is not a valid event."),
                    "401": _error("Signature missing or wrong, or timestamp too far away."),
                    "413": _error("The body is too large."),
                    "422": _error("Unknown ref; the event is kept in quarantine."),
                    "503": _error("Not recorded now (configuration or ledger); retry later."),
                },
            }},
            "/healthz": {"get": {
                "summary": "Whether the daemon is healthy",
                "responses": {"200": {"description": "Healthy."},
                              "503": {"description": "Unhealthy, with reasons."}},
            }},
        },
        "webhooks": {"career-relay-handover": {"post": {
            "summary": "A registered candidate's profile, sent to `[career_relay] handover_url`",
            "description": (
                "Sent after a `registered` event while the candidate's `career_relay` consent "
                f"holds, signed like the callbacks (`{SIGNATURE_HEADER}`). Only the items in "
                "`profile` are sent. Retried until a 2xx answer (a 4xx other than 408 or 429 "
                "is not retried); `id` is the same on every attempt."),
            "parameters": [{"name": SIGNATURE_HEADER, "in": "header", "required": True,
                            "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Handover"}}}},
            "responses": {"2XX": {"description": "Received; mailflow records the provision."}},
        }}},
        "components": {"schemas": {
            "Handover": {"type": "object",
                         "required": ["id", "type", "company", "ref", "sent_at", "profile"],
                         "properties": {
                             "id": {"type": "string", "description": "The hand-over's id."},
                             "type": {"const": "profile"},
                             "company": {"type": "string"},
                             "ref": {"type": "string",
                                     "description": "The candidate's referral code."},
                             "sent_at": {"type": "string", "format": "date-time"},
                             "profile": {"type": "object", "additionalProperties": False,
                                         "required": list(HANDOVER_ITEMS),
                                         "properties": {
                                             "name": {"type": "string"},
                                             "email": {"type": "string"},
                                             "desired_role": {"type": "string"},
                                             "skills": {"type": "array",
                                                        "items": {"type": "string"}},
                                             "qualifications": {"type": "array",
                                                                "items": {"type": "string"}}}}}},
            "Event": {"type": "object", "required": ["id", "type", "ref", "occurred_at"],
                      "properties": {
                          "id": {"type": "string", "maxLength": 200,
                                 "description": "The event's unique id."},
                          "type": {"type": "string", "enum": list(STATUSES)},
                          "ref": {"type": "string", "maxLength": 200,
                                  "description": "The candidate's referral code."},
                          "occurred_at": {"type": "string", "format": "date-time",
                                          "description": "ISO 8601 with offset."}}},
            "Accepted": {"type": "object", "properties": {
                "ok": {"const": True}, "id": {"type": "string"},
                "duplicate": {"type": "boolean"}}},
            "Error": {"type": "object", "properties": {
                "ok": {"const": False}, "error": {"type": "string"}}},
        }},
    }
