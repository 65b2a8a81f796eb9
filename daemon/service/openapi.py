"""The OpenAPI 3.1 document of the JSON endpoints, served at /openapi.json."""

from __future__ import annotations

from daemon import __version__

_ERROR = {"description": "An error, in one line", "content": {"application/json": {"schema": {
    "$ref": "#/components/schemas/Error"}}}}
_CAMERA_ID = {"name": "camera_id", "in": "path", "required": True, "schema": {"type": "string"}}
_JPEG = {"content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}}


def _json(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _rules_request() -> dict:
    return {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RulesEdit"}}}}


def openapi_document() -> dict:
    readiness = {"type": "object", "required": ["status", "checks"], "properties": {
        "status": {"type": "string", "enum": ["ready", "not ready"]},
        "checks": {"type": "object", "additionalProperties": {"type": "boolean"}}}}
    edited = {"type": "object", "required": ["valid", "yaml"], "properties": {
        "valid": {"type": "boolean"}, "applied": {"type": "boolean"}, "yaml": {"type": "string"}}}
    invalid = _json("The rules are not valid; `error` names the field", {"type": "object", "properties": {
        "valid": {"type": "boolean"}, "error": {"type": "string"}}})
    return {
        "openapi": "3.1.0",
        "info": {"title": "argusd", "version": __version__,
                 "description": "The argusd daemon's HTTP API. Beyond loopback every path but /healthz and "
                                "/readyz needs http.auth's credentials."},
        "paths": {
            "/healthz": {"get": {"summary": "Liveness", "responses": {
                "200": _json("The process serves HTTP", {"type": "object", "properties": {
                    "status": {"type": "string", "const": "ok"}}})}}},
            "/readyz": {"get": {"summary": "Readiness: model loaded, a camera streams, events are delivered",
                                "responses": {"200": _json("Ready", readiness),
                                              "503": _json("Not ready", readiness)}}},
            "/cameras": {"get": {"summary": "Every camera's state and counters", "responses": {
                "200": _json("The cameras", {"type": "object", "required": ["cameras", "detector"], "properties": {
                    "cameras": {"type": "array", "items": {"$ref": "#/components/schemas/Camera"}},
                    "detector": {"type": "object", "additionalProperties": {"type": "string"}}}})}}},
            "/fleet": {"get": {"summary": "Fleet mode: the members, this member's cameras and the assignment",
                               "responses": {"200": _json("The fleet", {"type": "object", "required": [
                                   "member", "members", "assignment"]}), "404": _ERROR}}},
            "/cameras/{camera_id}/rules": {"get": {
                "summary": "The camera's zones and lines as configured", "parameters": [_CAMERA_ID],
                "responses": {"200": _json("Zones and lines", {"$ref": "#/components/schemas/Rules"}),
                              "404": _ERROR}}},
            "/cameras/{camera_id}/latest.jpg": {"get": {
                "summary": "The latest analysed frame, annotated", "parameters": [_CAMERA_ID],
                "responses": {"200": {"description": "JPEG", **_JPEG}, "404": _ERROR, "503": _ERROR}}},
            "/config/rules/validate": {"post": {
                "summary": "Check a camera's new zones and lines as check-config would; returns the YAML block",
                "requestBody": _rules_request(),
                "responses": {"200": _json("Valid", edited), "400": _ERROR, "404": _ERROR, "415": _ERROR,
                              "422": invalid}}},
            "/config/rules/apply": {"post": {
                "summary": "Write a camera's new zones and lines to the config file and reload "
                           "(http.allow_config_writes)",
                "requestBody": _rules_request(),
                "responses": {"200": _json("Applied", edited), "400": _ERROR, "403": _ERROR, "404": _ERROR,
                              "415": _ERROR, "422": invalid}}},
        },
        "components": {"schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
            "Camera": {"type": "object", "required": ["id", "state"], "properties": {
                "id": {"type": "string"},
                "state": {"type": "string"},
                "last_frame_age_s": {"type": ["number", "null"]},
                "frames_analysed": {"type": "integer"},
                "active_objects": {"type": "integer"},
                "events": {"type": "integer"}}},
            "Rules": {"type": "object", "properties": {
                "editable": {"type": "boolean", "description": "the daemon has a config file to edit"},
                "writable": {"type": "boolean", "description": "http.allow_config_writes"},
                "zones": {"type": "array", "items": {"type": "object"}},
                "lines": {"type": "array", "items": {"type": "object"}}}},
            "RulesEdit": {"type": "object", "required": ["camera"], "properties": {
                "camera": {"type": "string"},
                "zones": {"type": "array", "items": {"type": "object"}},
                "lines": {"type": "array", "items": {"type": "object"}}}},
        }},
    }
