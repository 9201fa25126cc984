"""What a generated create answers, and that what it made can be read back: answers that wrap
the object in one property (DigitalOcean, Plaid), id fields named otherwise than their item
route's parameter or inside a ``oneOf`` (Twilio), ids the item route's own parameter check
takes, form values answered in the response's types (Stripe), request fields that are not
copied over richer response objects (Box), and the variant's example request. Each is served
over a real socket and driven with ``requests``."""

from __future__ import annotations

import json
import re
import uuid

import pytest
import requests
from openapi_specs import spec

from pytest_idempotency import DescriptionError, variant_from_openapi

OK = {"200": {"description": "ok"}}
FORM = "application/x-www-form-urlencoded"


def _doc(paths, schemas=None, **root):
    data = {"openapi": "3.0.3", "info": {"title": "T", "version": "1"}, "paths": paths, **root}
    if schemas:
        data["components"] = {"schemas": schemas}
    return data


def _write(tmp_path, data, name="api.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def _serve(api, tmp_path, data, overlay=None):
    overlay_path = _write(tmp_path, overlay, "overlay.json") if overlay else None
    api.reset(variant_from_openapi(_write(tmp_path, data), overlay=overlay_path))
    return api


def _ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def _answer(code, schema, example=None):
    media = {"schema": schema, **({"example": example} if example is not None else {})}
    return {code: {"description": "ok", "content": {"application/json": media}}}


KEY = {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}}


def _create(schema, answer, media="application/json"):
    body = {"required": True, "content": {media: {"schema": schema}}}
    return {"post": {"requestBody": body, "responses": answer, "parameters": [KEY]}}


def _get(answer, param=None):
    op = {"get": {"responses": answer}}
    if param is not None:
        op["get"]["parameters"] = [param]
    return op


def _path_param(name, schema=None):
    return {"name": name, "in": "path", "required": True, "schema": schema or {"type": "string"}}


def _post(api, path, key=None, **kwargs):
    headers = {"Idempotency-Key": key or str(uuid.uuid4())}
    return requests.post(api.url_for(path), headers=headers, **kwargs)


def _replayed(api, path, first, key, **kwargs):
    """The same request with the same key: the same bytes, and no second side effect."""
    again = _post(api, path, key, **kwargs)
    assert again.status_code == first.status_code
    assert again.content == first.content


# -- #3: answers that wrap the object in one property ----------------------------------------

ENDPOINT = {
    "type": "object",
    "required": ["origin"],
    "properties": {
        "id": {"type": "string", "format": "uuid", "readOnly": True},
        "origin": {"type": "string"},
        "ttl": {"type": "integer"},
        "created_at": {"type": "string", "readOnly": True},
    },
}
ENDPOINT_EXAMPLE = {
    "id": "19f06b6a-3ace-4315-b086-499a0e521b76",
    "origin": "static-images.nyc3.digitaloceanspaces.com",
    "ttl": 3600,
    "created_at": "2018-07-19T15:04:16Z",
}


def _digitalocean(request_schema=None):
    """DigitalOcean's CDN endpoints: ``{"endpoint": {...}}`` and ``{"endpoints": [...]}``."""
    one = {"type": "object", "properties": {"endpoint": _ref("Endpoint")}}
    many = {
        "allOf": [
            {
                "type": "object",
                "properties": {"endpoints": {"type": "array", "items": _ref("Endpoint")}},
            },
            {"type": "object", "properties": {"meta": {"type": "object"}}},
        ]
    }
    item = _get(_answer("200", one, {"endpoint": ENDPOINT_EXAMPLE}), _path_param("cdn_id"))
    paths = {
        "/v2/cdn/endpoints": {
            **_create(
                request_schema or _ref("Endpoint"),
                _answer("201", one, {"endpoint": ENDPOINT_EXAMPLE}),
            ),
            **_get(_answer("200", many, {"endpoints": [ENDPOINT_EXAMPLE], "meta": {"total": 1}})),
        },
        "/v2/cdn/endpoints/{cdn_id}": item,
    }
    return _doc(paths, {"Endpoint": ENDPOINT})


def test_an_enveloped_create_answers_a_fresh_id_and_the_request_inside_the_envelope(
    idempotent_api, tmp_path
):
    api = _serve(idempotent_api, tmp_path, _digitalocean())
    key, sent = str(uuid.uuid4()), {"origin": "assets.example.com", "ttl": 60}
    created = _post(api, "/v2/cdn/endpoints", key, json=sent)
    assert created.status_code == 201
    endpoint = created.json()["endpoint"]
    assert list(created.json()) == ["endpoint"]
    assert endpoint["id"] != ENDPOINT_EXAMPLE["id"]
    assert (endpoint["origin"], endpoint["ttl"]) == ("assets.example.com", 60)
    read = requests.get(api.url_for(f"/v2/cdn/endpoints/{endpoint['id']}"))
    assert read.status_code == 200
    assert read.json() == {"endpoint": endpoint}
    listed = requests.get(api.url_for("/v2/cdn/endpoints")).json()
    assert listed["endpoints"] == [endpoint]
    assert listed["meta"] == {"total": 1}
    _replayed(api, "/v2/cdn/endpoints", created, key, json=sent)
    api.assert_exactly_once(kind="endpoints.created")


def test_two_enveloped_creates_answer_two_ids_each_read_back(idempotent_api, tmp_path):
    api = _serve(idempotent_api, tmp_path, _digitalocean())
    made = [
        _post(api, "/v2/cdn/endpoints", json={"origin": f"o{n}.example.com"}).json()["endpoint"]
        for n in (1, 2)
    ]
    assert made[0]["id"] != made[1]["id"]
    for endpoint in made:
        read = requests.get(api.url_for(f"/v2/cdn/endpoints/{endpoint['id']}"))
        assert read.json()["endpoint"] == endpoint
    assert requests.get(api.url_for("/v2/cdn/endpoints")).json()["endpoints"] == made


def test_an_enveloped_request_body_is_copied_from_inside_its_envelope(idempotent_api, tmp_path):
    wrapped = {
        "type": "object",
        "required": ["endpoint"],
        "properties": {"endpoint": _ref("Endpoint")},
    }
    api = _serve(idempotent_api, tmp_path, _digitalocean(wrapped))
    key, sent = str(uuid.uuid4()), {"endpoint": {"origin": "wrapped.example.com", "ttl": 5}}
    created = _post(api, "/v2/cdn/endpoints", key, json=sent)
    endpoint = created.json()["endpoint"]
    assert (endpoint["origin"], endpoint["ttl"]) == ("wrapped.example.com", 5)
    assert "endpoint" not in endpoint
    read = requests.get(api.url_for(f"/v2/cdn/endpoints/{endpoint['id']}"))
    assert read.json() == {"endpoint": endpoint}
    assert requests.get(api.url_for("/v2/cdn/endpoints")).json()["endpoints"] == [endpoint]
    _replayed(api, "/v2/cdn/endpoints", created, key, json=sent)
    api.assert_exactly_once()


TRANSFER = {
    "type": "object",
    "required": ["id", "amount"],
    "properties": {
        "id": {"type": "string"},
        "amount": {"type": "string"},
        "status": {"type": "string"},
    },
}


def _plaid(extra=None, collection="/transfers"):
    """Plaid's shape: ``{"transfer": {...}, "request_id": "..."}``, both required."""
    one = {
        "type": "object",
        "required": ["transfer", "request_id", *(extra or {})],
        "properties": {
            "transfer": _ref("Transfer"),
            "request_id": {"type": "string"},
            **(extra or {}),
        },
    }
    many = {
        "type": "object",
        "required": ["transfers", "request_id"],
        "properties": {
            "transfers": {"type": "array", "items": _ref("Transfer")},
            "request_id": {"type": "string"},
        },
    }
    example = {
        "transfer": {"id": "460cbe92", "amount": "12.34", "status": "pending"},
        "request_id": "saKrIBuEB9qJZno",
    }
    request = {
        "type": "object",
        "required": ["amount"],
        "properties": {"amount": {"type": "string"}},
    }
    paths = {
        collection: {
            **_create(request, _answer("200", one, example)),
            **_get(_answer("200", many)),
        },
        collection + "/{transfer_id}": _get(_answer("200", one), _path_param("transfer_id")),
    }
    return _doc(paths, {"Transfer": TRANSFER})


def test_an_envelope_beside_a_request_id_holds_the_fresh_id(idempotent_api, tmp_path):
    api = _serve(idempotent_api, tmp_path, _plaid())
    key = str(uuid.uuid4())
    created = _post(api, "/transfers", key, json={"amount": "99.00"})
    assert created.status_code == 200
    transfer = created.json()["transfer"]
    assert transfer["id"] != "460cbe92"
    assert (transfer["amount"], transfer["status"]) == ("99.00", "pending")
    assert created.json()["request_id"] == "saKrIBuEB9qJZno"
    read = requests.get(api.url_for(f"/transfers/{transfer['id']}"))
    assert read.status_code == 200
    assert read.json()["transfer"] == transfer
    assert requests.get(api.url_for("/transfers")).json()["transfers"] == [transfer]
    _replayed(api, "/transfers", created, key, json={"amount": "99.00"})
    api.assert_exactly_once(kind="transfers.created")


ACCOUNT = {"account": {"type": "object", "properties": {"id": {"type": "string"}}}}


def test_an_answer_with_two_objects_carrying_ids_is_refused_naming_id_field(tmp_path):
    data = _plaid(extra=ACCOUNT, collection="/movements")
    with pytest.raises(DescriptionError) as raised:
        variant_from_openapi(_write(tmp_path, data))
    assert raised.value.where == "/paths/~1movements/post/responses"
    assert "transfer, account" in raised.value.problem
    assert "id_field: transfer.id" in raised.value.fix


def test_the_id_field_fix_names_the_envelope_and_its_id(idempotent_api, tmp_path):
    data = _plaid(extra=ACCOUNT, collection="/movements")
    overlay = {"paths": {"/movements": {"post": {"x-idempotency": {"id_field": "transfer.id"}}}}}
    api = _serve(idempotent_api, tmp_path, data, overlay)
    key = str(uuid.uuid4())
    created = _post(api, "/movements", key, json={"amount": "1.00"})
    transfer = created.json()["transfer"]
    assert transfer["amount"] == "1.00"
    read = requests.get(api.url_for(f"/movements/{transfer['id']}"))
    assert read.json()["transfer"] == transfer
    assert requests.get(api.url_for("/movements")).json()["transfers"] == [transfer]
    _replayed(api, "/movements", created, key, json={"amount": "1.00"})
    api.assert_exactly_once()


# -- #7: the id field and ids the item route takes ---------------------------------------------

BN = "^BN[0-9a-fA-F]{32}$"
VT = "^VT[0-9a-fA-F]{32}$"
QE = "^QE[0-9a-fA-F]{32}$"
MG = "^MG[0-9a-fA-F]{32}$"


def _sid(pattern, **more):
    return {"type": "string", "minLength": 34, "maxLength": 34, "pattern": pattern, **more}


def _twilio_vettings():
    """Twilio Messaging's brand vettings: ``{BrandVettingSid}`` names ``brand_vetting_sid``,
    and the answer also carries the parent's ``brand_sid``."""
    vetting = {
        "type": "object",
        "properties": {
            "brand_sid": _sid(BN),
            "brand_vetting_sid": _sid(VT, nullable=True),
            "vetting_id": {"type": "string"},
        },
    }
    example = {
        "brand_sid": "BN0044409f7e067e279523808d267e2d85",
        "brand_vetting_sid": "VT12445353",
        "vetting_id": "v1",
    }
    request = {"type": "object", "properties": {"VettingId": {"type": "string"}}}
    parent = _path_param("BrandSid", _sid(BN))
    listed = {"type": "object", "properties": {"data": {"type": "array", "items": vetting}}}
    create = _create(request, _answer("201", vetting, example), FORM)
    create["post"]["parameters"] += [parent]
    collection = {**create, "get": {"parameters": [parent], "responses": _answer("200", listed)}}
    item = {
        "get": {
            "parameters": [parent, _path_param("BrandVettingSid", _sid(VT))],
            "responses": _answer("200", vetting, example),
        }
    }
    return _doc(
        {
            "/v1/BrandRegistrations/{BrandSid}/Vettings": collection,
            "/v1/BrandRegistrations/{BrandSid}/Vettings/{BrandVettingSid}": item,
        }
    )


def test_the_item_parameter_names_the_id_field_ignoring_underscores(idempotent_api, tmp_path):
    api = _serve(idempotent_api, tmp_path, _twilio_vettings())
    base, key = "/v1/BrandRegistrations/BN" + "0" * 31 + "1/Vettings", str(uuid.uuid4())
    created = _post(api, base, key, data={"VettingId": "v9"})
    assert created.status_code == 201
    vetting = created.json()
    assert vetting["brand_sid"] == "BN0044409f7e067e279523808d267e2d85"  # the parent, untouched
    assert re.fullmatch(VT, vetting["brand_vetting_sid"])
    read = requests.get(api.url_for(f"{base}/{vetting['brand_vetting_sid']}"))
    assert read.status_code == 200
    assert read.json() == vetting
    assert requests.get(api.url_for(base)).json()["data"] == [vetting]
    _replayed(api, base, created, key, data={"VettingId": "v9"})
    api.assert_exactly_once()


def _twilio_usa2p(response_sid):
    """Twilio Messaging's US A2P compliance: the answer is a ``oneOf`` of two versions."""

    def version(extra):
        return {
            "type": "object",
            "properties": {"sid": response_sid, "description": {"type": "string"}, **extra},
        }

    schemas = {"V1": version({"v1": {"type": "string"}}), "V2": version({"v2": {"type": "string"}})}
    answer = {"oneOf": [_ref("V1"), _ref("V2")]}
    example = {"sid": "QE2c6890da8086d771620e9b13fadeba0b", "description": "example"}
    request = {"type": "object", "properties": {"description": {"type": "string"}}}
    parent = _path_param("MessagingServiceSid", _sid(MG))
    create = _create(request, _answer("201", answer, example), FORM)
    create["post"]["parameters"] += [parent]
    item = {
        "get": {
            "parameters": [parent, _path_param("Sid", _sid(QE))],
            "responses": _answer("200", answer, example),
        }
    }
    listed = {"type": "object", "properties": {"compliance": {"type": "array", "items": answer}}}
    collection = {**create, "get": {"parameters": [parent], "responses": _answer("200", listed)}}
    base = "/v1/Services/{MessagingServiceSid}/Compliance/Usa2p"
    return _doc({base: collection, base + "/{Sid}": item}, schemas)


@pytest.mark.parametrize(
    "response_sid",
    [_sid(QE, nullable=True), {"type": "string"}],
    ids=["the-pattern-in-oneof-branches", "the-pattern-only-on-the-item-route"],
)
def test_a_created_id_fits_its_pattern_and_is_read_back(idempotent_api, tmp_path, response_sid):
    api = _serve(idempotent_api, tmp_path, _twilio_usa2p(response_sid))
    base, key = "/v1/Services/MG" + "0" * 32 + "/Compliance/Usa2p", str(uuid.uuid4())
    created = _post(api, base, key, data={"description": "mine"})
    again = _post(api, base, data={"description": "other"})
    sid = created.json()["sid"]
    assert re.fullmatch(QE, sid)
    assert sid != again.json()["sid"]
    assert created.json()["description"] == "mine"
    read = requests.get(api.url_for(f"{base}/{sid}"))
    assert read.status_code == 200
    assert read.json() == created.json()
    assert created.json() in requests.get(api.url_for(base)).json()["compliance"]
    _replayed(api, base, created, key, data={"description": "mine"})
    api.assert_side_effects(2, kind="Usa2p.created")


# -- #9: form values in the response's types --------------------------------------------------


def _stripe():
    intent = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "amount": {"type": "integer"},
            "application_fee": {"type": "number"},
            "capture": {"type": "boolean"},
            "description": {"type": "string"},
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
    form = {
        "type": "object",
        "properties": {
            "amount": {"type": "integer"},
            "application_fee": {"type": "number"},
            "capture": {"type": "boolean"},
            "description": {"type": "string"},
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
    listed = {
        "type": "object",
        "properties": {"object": {"type": "string"}, "data": {"type": "array", "items": intent}},
    }
    paths = {
        "/v1/payment_intents": {
            **_create(form, _answer("200", intent), FORM),
            **_get(_answer("200", listed)),
        },
        "/v1/payment_intents/{intent}": _get(_answer("200", intent), _path_param("intent")),
    }
    return _doc(paths)


def test_form_values_are_answered_in_the_types_the_response_declares(idempotent_api, tmp_path):
    api = _serve(idempotent_api, tmp_path, _stripe())
    sent = {
        "amount": "2000",
        "application_fee": "1.5",
        "capture": "true",
        "description": "123",
        "metadata[n]": "7",
    }
    key = str(uuid.uuid4())
    created = _post(api, "/v1/payment_intents", key, data=sent)
    intent = created.json()
    assert intent["amount"] == 2000
    assert intent["application_fee"] == 1.5
    assert intent["capture"] is True
    assert intent["description"] == "123"  # the response says string
    assert intent["metadata"] == {"n": "7"}
    read = requests.get(api.url_for(f"/v1/payment_intents/{intent['id']}"))
    assert read.json() == intent
    assert requests.get(api.url_for("/v1/payment_intents")).json()["data"] == [intent]
    _replayed(api, "/v1/payment_intents", created, key, data=sent)
    api.assert_exactly_once()


# -- #13: request fields the response types otherwise -----------------------------------------


def _box():
    folder = {
        "type": "object",
        "required": ["id", "type", "name"],
        "properties": {
            "id": {"type": "string"},
            "type": {"type": "string", "enum": ["folder"]},
            "name": {"type": "string"},
        },
    }
    file = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "parent": {"oneOf": [folder, {"type": "null"}]},
        },
    }
    example = {
        "id": "12345",
        "name": "copy.txt",
        "parent": {"id": "0", "type": "folder", "name": "All Files"},
    }
    request = {
        "type": "object",
        "required": ["parent"],
        "properties": {
            "name": {"type": "string"},
            "parent": {"type": "object", "properties": {"id": {"type": "string"}}},
        },
    }
    listed = {"type": "object", "properties": {"entries": {"type": "array", "items": file}}}
    paths = {
        "/files": {
            **_create(request, _answer("201", file, example)),
            **_get(_answer("200", listed)),
        },
        "/files/{file_id}": _get(_answer("200", file), _path_param("file_id")),
    }
    return _doc(paths)


def test_a_request_field_is_not_copied_over_a_richer_response_object(idempotent_api, tmp_path):
    api = _serve(idempotent_api, tmp_path, _box())
    sent, key = {"name": "mine.txt", "parent": {"id": "0"}}, str(uuid.uuid4())
    created = _post(api, "/files", key, json=sent)
    made = created.json()
    assert made["name"] == "mine.txt"
    assert made["parent"] == {"id": "0", "type": "folder", "name": "All Files"}
    assert made["id"] != "12345"
    read = requests.get(api.url_for(f"/files/{made['id']}"))
    assert read.json() == made
    assert requests.get(api.url_for("/files")).json()["entries"] == [made]
    _replayed(api, "/files", created, key, json=sent)
    api.assert_exactly_once()


# -- #10: the variant's example request -------------------------------------------------------


def _no_create():
    """OpenAPI's api-with-examples: two GETs, nothing to create."""
    return _doc(
        {
            "/": _get(_answer("200", {"type": "object"})),
            "/v2": _get(_answer("200", {"type": "object"})),
        }
    )


def _required_query():
    """OpenAPI's callback-example: the create takes a required query parameter."""
    param = {
        "name": "callbackUrl",
        "in": "query",
        "required": True,
        "schema": {"type": "string", "format": "uri"},
    }
    create = _create({"type": "object"}, _answer("201", {"type": "object"}))
    create["post"]["parameters"] += [param]
    return _doc({"/streams": create})


def _patterned_path():
    """Twilio Verify: the only creates are under a patterned parent ``/v2/Services/{ServiceSid}``."""
    parent = _path_param("ServiceSid", _sid("^VA[0-9a-fA-F]{32}$"))
    body = {
        "type": "object",
        "required": ["Identity"],
        "properties": {"Identity": {"type": "string", "minLength": 3}, "Ttl": {"type": "integer"}},
    }
    create = _create(
        body, _answer("201", {"type": "object", "properties": {"sid": {"type": "string"}}}), FORM
    )
    create["post"]["parameters"] += [parent]
    number = _path_param("Version", {"type": "integer", "minimum": 2})
    versioned = _create({"type": "object"}, _answer("201", {"type": "object"}))
    versioned["post"]["parameters"] += [
        number,
        {
            "name": "Region",
            "in": "query",
            "required": True,
            "schema": {"type": "string", "enum": ["us1", "ie1"]},
        },
    ]
    return _doc(
        {"/v2/Services/{ServiceSid}/AccessTokens": create, "/v{Version}/Regions": versioned}
    )


def _invalid_example():
    """A create whose own request example breaks its schema: the minimal instance is sent."""
    schema = {
        "type": "object",
        "required": ["amount"],
        "properties": {"amount": {"type": "integer", "minimum": 1}},
    }
    body = {
        "required": True,
        "content": {"application/json": {"schema": schema, "example": {"amount": "ten"}}},
    }
    return _doc(
        {
            "/charges": {
                "post": {"requestBody": body, "responses": _answer("201", {"type": "object"})}
            }
        }
    )


SMALL = {
    "no-create": _no_create,
    "required-query": _required_query,
    "patterned-path": _patterned_path,
    "invalid-example": _invalid_example,
}


def _example_answered(api):
    method, url, params = api.example()
    answer = requests.request(method, url, **api.request_kwargs(params, key=str(uuid.uuid4())))
    assert 200 <= answer.status_code < 300, (method, url, params, answer.text)


ADYEN = ("adyen-checkout-v71.json", "adyen-transfers-v4.json")


def test_the_variant_example_is_answered_2xx_for_adyen_and_small_documents(
    idempotent_api, tmp_path
):
    small = [_write(tmp_path, make(), f"{name}.json") for name, make in sorted(SMALL.items())]
    for path in [*(spec(name) for name in ADYEN), *small]:
        idempotent_api.reset(variant_from_openapi(path))
        _example_answered(idempotent_api)


def test_an_example_with_nothing_to_create_is_a_get(tmp_path):
    variant = variant_from_openapi(_write(tmp_path, _no_create()))
    assert variant.example == ("GET", "/", {})


def test_an_example_fills_path_parameters_their_schema_takes(tmp_path):
    method, path, params = variant_from_openapi(_write(tmp_path, _patterned_path())).example
    assert method == "POST"
    assert re.fullmatch(r"/v2/Services/VA[0-9a-fA-F]{32}/AccessTokens", path)
    assert len(params["Identity"]) >= 3
