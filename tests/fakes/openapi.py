"""Validation of requests and responses against the official ZGW OpenAPI files (openapi-core 0.17).

The specification files are read from ``../shared/specs/`` next to the
repository; they are not copied into the project. Only the ``servers`` entry
is replaced in memory, so that paths are matched on the fake's prefix.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import yaml
from jsonschema import RefResolver
from openapi_core import Spec, V30RequestValidator, V30ResponseValidator
from openapi_core.datatypes import RequestParameters
from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator
from werkzeug.datastructures import Headers, ImmutableMultiDict

SPECS_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "specs"
SPEC_FILES = {"zaken": "zaken-api-1.5.1.yaml", "catalogi": "catalogi-api-1.3.1.yaml"}
#: The fake serves each API under this prefix (like Open Zaak does).
PREFIXES = {"zaken": "/zaken/api/v1", "catalogi": "/catalogi/api/v1"}
SPEC_HOST = "http://fake.invalid"


@functools.lru_cache(maxsize=None)
def spec_dict(api: str) -> Dict[str, Any]:
    path = SPECS_DIR / SPEC_FILES[api]
    if not path.exists():
        raise FileNotFoundError(f"OpenAPI file not found: {path} (expected in ../shared/specs)")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as handle:
        data = yaml.load(handle, Loader=loader)
    data["servers"] = [{"url": SPEC_HOST + PREFIXES[api]}]
    return data


@functools.lru_cache(maxsize=None)
def spec(api: str) -> Spec:
    return Spec.from_dict(spec_dict(api), validator=None)


#: Error answers of the ZGW APIs are application/problem+json (RFC 7807): JSON.
_MEDIA = {"application/problem+json": json.loads}


@functools.lru_cache(maxsize=None)
def _validators(api: str):
    return (
        V30RequestValidator(spec(api), extra_media_type_deserializers=_MEDIA),
        V30ResponseValidator(spec(api), extra_media_type_deserializers=_MEDIA),
    )


class OpenAPIRequest:
    """The openapi-core request protocol for one received HTTP request."""

    def __init__(self, method: str, path: str, query: Mapping[str, List[str]], headers: Mapping[str, str],
                 body: Optional[bytes], content_type: str) -> None:
        self.host_url = SPEC_HOST
        self.path = path
        self.method = method.lower()
        self.body = body.decode("utf-8") if body else None
        self.mimetype = (content_type or "").split(";")[0].strip().lower() or "application/json"
        self.parameters = RequestParameters(
            query=ImmutableMultiDict([(k, v) for k, values in query.items() for v in values]),
            header=Headers(list(headers.items())),
            cookie=ImmutableMultiDict(),
        )


class OpenAPIResponse:
    def __init__(self, status: int, body: str, headers: Mapping[str, str], content_type: str) -> None:
        self.status_code = status
        self.data = body
        self.headers = Headers(list(headers.items()))
        self.mimetype = content_type


def _describe(error: Exception) -> str:
    parts = [f"{type(error).__name__}: {error}"]
    cause = error.__cause__
    while cause is not None:
        schema_errors = getattr(cause, "schema_errors", None)
        if schema_errors:
            parts.extend(f"  - {'/'.join(map(str, e.absolute_path))}: {e.message}" for e in schema_errors)
        else:
            parts.append(f"  cause: {type(cause).__name__}: {cause}")
        cause = cause.__cause__
    return "\n".join(parts)


def validate_request(api: str, request: OpenAPIRequest) -> Optional[str]:
    """None when the request conforms to the spec, else a description of the errors."""
    try:
        _validators(api)[0].validate(request)
    except Exception as error:  # openapi-core raises many different error types
        return _describe(error)
    return None


#: openapi-core 0.17 crashes (AttributeError) on ``null`` for a nullable ``allOf``
#: whose target has a ``discriminator`` (Zaak.zaakgeometrie -> GeoJSONGeometry).
#: For validation only, such a null is left out (the key is not required).
_NULLABLE_DISCRIMINATED = ("zaakgeometrie",)


def _without_crashing_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_crashing_nulls(v) for k, v in value.items()
                if not (k in _NULLABLE_DISCRIMINATED and v is None)}
    if isinstance(value, list):
        return [_without_crashing_nulls(v) for v in value]
    return value


def validate_response(api: str, request: OpenAPIRequest, response: OpenAPIResponse) -> Optional[str]:
    if response.mimetype.endswith("json") and response.data:
        response = OpenAPIResponse(
            response.status_code, dumps(_without_crashing_nulls(json.loads(response.data))),
            response.headers, response.mimetype,
        )
    try:
        _validators(api)[1].validate(request, response)
    except Exception as error:
        return _describe(error)
    return None


def validate_schema(api: str, schema_name: str, instance: Any, write: bool) -> List[str]:
    """Validate against one component schema. Used where openapi-core does not
    follow a ``discriminator`` mapping (the Rol subtypes, e.g. natuurlijk_persoon_Rol)."""
    document = spec_dict(api)
    validator_class = OAS30WriteValidator if write else OAS30ReadValidator
    validator = validator_class(
        {"$ref": f"#/components/schemas/{schema_name}"},
        resolver=RefResolver.from_schema(document),
    )
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)]


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
