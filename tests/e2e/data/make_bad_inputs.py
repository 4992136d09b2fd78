"""Writes bad_inputs.json: requests a server must answer with a clear 4xx
and an OpenAI error body, then carry on. Run it after changing the cases:
    python3 tests/e2e/data/make_bad_inputs.py

Each case: name, method, path, auth (user, admin, none, revoked, expired,
user+garbage, or raw:HEADER-VALUE), body (text), body_hex (bytes) or
body_fill (prefix, `count` times `fill`, suffix), optional content_type,
and the expected status (and error code, when fixed)."""

import json
from pathlib import Path

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
VALID_CHAT = {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
VALID_COMPLETION = {"model": "m", "prompt": "Hello", "max_tokens": 4}

cases = []


def case(name, status, path=CHAT, method="POST", body=None, body_hex=None, auth="user", code=None, content_type="application/json"):
    c = {"name": name, "method": method, "path": path, "auth": auth, "status": status}
    if body is not None:
        c["body"] = body if isinstance(body, str) else json.dumps(body)
    if body_hex is not None:
        c["body_hex"] = body_hex
    if code:
        c["code"] = code
    if content_type != "application/json":
        c["content_type"] = content_type
    cases.append(c)


def chat(**fields):
    return {**VALID_CHAT, **fields}


def completion(**fields):
    return {**VALID_COMPLETION, **fields}


# Malformed and truncated JSON.
for text in ["", " ", "{", "}", "[", "]", "{\"model\":", "{'model': 'm'}", "null", "[]", "123", "\"text\"",
             "true", "{\"messages\": [}", "{\"model\": \"m\",}", "{\"a\" 1}", "{\"max_tokens\": NaN}",
             "{\"temperature\": Infinity}", "{\"temperature\": -Infinity}", "/* c */ {}", "{\"model\": \"m\"} x",
             "{\"model\": \"m\" \"x\": 1}", "\ufeff{}", "{\"max_tokens\": 01}", "{\"max_tokens\": .5}",
             "{\"max_tokens\": 1e}", "{\"model\": \"\\x41\"}", "{\"model\": \"\\u12\"}"]:
    case(f"malformed chat {text[:24]!r}", 400, body=text)
    case(f"malformed completion {text[:24]!r}", 400, path=COMPLETIONS, body=text)
for valid, path in [(json.dumps(VALID_CHAT), CHAT), (json.dumps(VALID_COMPLETION), COMPLETIONS)]:
    for cut in [1, 5, 10, 17, 25, 33, len(valid) - 2, len(valid) - 1]:
        case(f"truncated {path} at {cut}", 400, path=path, body=valid[:cut])

# Wrong types.
for field, value in [("messages", "Hi"), ("messages", {"role": "user"}), ("messages", [1]), ("messages", [[]]),
                     ("messages", None), ("messages", [{"role": 5, "content": "x"}]),
                     ("max_tokens", "10"), ("max_tokens", 1.5), ("max_tokens", [4]), ("temperature", "hot"),
                     ("temperature", "NaN"), ("top_p", {}), ("n", "2"), ("stream", "yes"), ("stop", 5),
                     ("stop", [1, 2]), ("logit_bias", []), ("logit_bias", {"a": 1}), ("logit_bias", {"1": "x"}),
                     ("logprobs", "true"), ("top_logprobs", "3"), ("seed", "x"), ("user", 5), ("model", 5),
                     ("tools", "x"), ("tools", [5]), ("response_format", "json"), ("response_format", {"type": "xml"}),
                     ("stream_options", 1), ("presence_penalty", "1"), ("priority", "high"), ("top_k", 1.5)]:
    case(f"chat {field} = {json.dumps(value)[:30]}", 400, body=chat(**{field: value}))
for field, value in [("prompt", 5), ("prompt", [1.5]), ("prompt", [[-1]]), ("prompt", {"a": 1}), ("prompt", None),
                     ("prompt", [True]), ("echo", "yes"), ("logprobs", "1"), ("stream", 5), ("n", "x")]:
    case(f"completion {field} = {json.dumps(value)[:30]}", 400, path=COMPLETIONS, body=completion(**{field: value}))

# Numbers out of range.
for field, value in [("max_tokens", -1), ("max_tokens", 0), ("max_tokens", 10**20), ("max_tokens", 2**64),
                     ("max_tokens", 10**6), ("temperature", -1), ("temperature", 3), ("temperature", 1e308),
                     ("top_p", -0.1), ("top_p", 1.5), ("n", 0), ("n", 17), ("n", 10**9), ("presence_penalty", 3),
                     ("frequency_penalty", -3), ("repetition_penalty", 0), ("repetition_penalty", 3),
                     ("top_logprobs", 21), ("top_logprobs", -1), ("priority", 2**40), ("min_p", 2),
                     ("logit_bias", {"1": 101}), ("logit_bias", {"-5": 1}), ("logit_bias", {"999999999": 1}),
                     ("max_completion_tokens", -5)]:
    case(f"chat {field} = {value}", 400, body=chat(**{field: value}))
case("chat logprobs true with top_logprobs 21", 400, body=chat(logprobs=True, top_logprobs=21))
case("chat top_logprobs without logprobs", 400, body=chat(top_logprobs=2))
for field, value in [("logprobs", 21), ("logprobs", -1), ("prompt", [999999999]), ("prompt", []), ("prompt", ""),
                     ("prompt", [[]]), ("max_tokens", -1)]:
    case(f"completion {field} = {value}", 400, path=COMPLETIONS, body=completion(**{field: value}))
case("prompt tokens beyond the context", 400, path=COMPLETIONS, body=completion(prompt=[1] * 9000),
     code="context_length_exceeded")
case("empty messages", 400, body=chat(messages=[]))

# Limits on sizes.
case("17 stop strings", 400, body=chat(stop=[str(i) for i in range(17)]))
case("a 2 KB stop string", 400, body=chat(stop=["x" * 2048]))
case("301 logit_bias entries", 400, body=chat(logit_bias={str(i): 1 for i in range(301)}))
case("65 prompts", 400, path=COMPLETIONS, body=completion(prompt=["a"] * 65))
case("4097 messages", 400, body=chat(messages=[{"role": "user", "content": "a"}] * 4097))
case("129 tools", 400, body=chat(tools=[{"type": "function", "function": {"name": f"f{i}", "parameters": {}}} for i in range(129)]))
cases.append({"name": "a body over 16 MiB", "method": "POST", "path": COMPLETIONS, "auth": "user", "status": 413,
              "body_fill": {"prefix": "{\"model\": \"m\", \"prompt\": \"", "fill": "a",
                            "count": 16 * 1024 * 1024 + 16, "suffix": "\"}"}})

# Deep nesting.
case("a body nested 1000 deep", 400, body="[" * 1000 + "]" * 1000)
case("messages nested 200 deep", 400, body="{\"model\": \"m\", \"messages\": " + "[" * 200 + "]" * 200 + "}")
case("template kwargs nested 300 deep", 400,
     body="{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"chat_template_kwargs\": "
     + "{\"a\": " * 300 + "1" + "}" * 300 + "}")

# Invalid UTF-8 and control characters.
prefix = b'{"model": "m", "messages": [{"role": "user", "content": "'
suffix = b'"}], "max_tokens": 4}'
for name, raw in [("a lone continuation byte", b"\x80"), ("0xff", b"\xff\xfe"), ("an overlong slash", b"\xc0\xaf"),
                  ("a truncated sequence", b"\xe2\x82"), ("a UTF-16 surrogate in UTF-8", b"\xed\xa0\x80"),
                  ("a raw NUL", b"\x00"), ("a raw control byte", b"\x01"), ("a raw newline", b"\n"),
                  ("a raw tab", b"\t"), ("a raw escape", b"\x1b[31m")]:
    case(f"content with {name}", 400, body_hex=(prefix + raw + suffix).hex())
case("a lone surrogate escape", 400, body=json.dumps(chat()).replace("Hi", "\\ud800"))
case("model with invalid UTF-8", 400, body_hex=(b'{"model": "\xff", "prompt": "a"}').hex(), path=COMPLETIONS)

# Content types.
case("text/plain body", 415, body=json.dumps(VALID_CHAT), content_type="text/plain")
case("form body", 415, body="model=m", content_type="application/x-www-form-urlencoded")
case("xml body", 415, body="<chat/>", content_type="application/xml")

# Methods and routes.
for method, path in [("GET", CHAT), ("PUT", COMPLETIONS), ("DELETE", "/v1/models"), ("POST", "/health"),
                     ("PATCH", "/tokenize"), ("GET", "/detokenize"), ("DELETE", CHAT), ("POST", "/v1/models"),
                     ("PUT", "/metrics")]:
    case(f"{method} {path}", 405, method=method, path=path, body="{}" if method in ("POST", "PUT", "PATCH") else None)
for path in ["/v1/embeddings", "/v2/chat/completions", "//v1//chat//completions", "/v1/chat", "/V1/models",
             "/v1/models/%00", "/v1/models/../../admin/v1/keys", "/v1/models/..%2f..%2fadmin%2fv1%2fkeys",
             "/v1/models/does-not-exist", "/%2e%2e/etc/passwd", "/v1/chat/completions/extra"]:
    case(f"GET {path}", 404, method="GET", path=path)

# Path tricks in model names.
for model in ["../../etc/passwd", "/etc/passwd", "m/../m", "", " m", "m\u0000", "M", "m" * 10000, "%2e%2e", "m?x=1",
              "*", "m@v1"]:
    case(f"model {model[:20]!r}", 404, body=chat(model=model), code="model_not_found")
case("completion model ../", 404, path=COMPLETIONS, body=completion(model="../m"), code="model_not_found")

# Authentication and roles.
for name, auth in [("no key", "none"), ("empty bearer", "raw:Bearer"), ("bearer and spaces", "raw:Bearer    "),
                   ("basic auth", "raw:Basic dXNlcjpwYXNz"), ("unknown key", "raw:Bearer sy-" + "0" * 48),
                   ("a key without its prefix", "raw:Bearer 0123456789abcdef"),
                   ("token scheme", "raw:Token sy-abc"), ("a key with trailing garbage", "user+garbage"),
                   ("a revoked key", "revoked"), ("an expired key", "expired"), ("a very long key", "raw:Bearer " + "a" * 4000)]:
    case(f"auth: {name}", 401, body=chat(), auth=auth, code="invalid_api_key")
    case(f"auth: {name} on /v1/models", 401, method="GET", path="/v1/models", auth=auth, code="invalid_api_key")
case("a user key on the admin API", 403, method="GET", path="/admin/v1/models")
case("a user key creating keys", 403, path="/admin/v1/keys", body={"name": "x", "role": "admin"})
case("a user key reading usage", 403, method="GET", path="/admin/v1/usage")

# The admin API's own bad inputs (as an admin).
for body in [{}, {"name": "x"}, {"name": "x", "role": "root"}, {"name": "", "role": "user"}, {"name": "a b", "role": "user"},
             {"name": "x", "role": "user", "rpm": 0}, {"name": "x", "role": "user", "rpm": -1},
             {"name": "x", "role": "user", "expires": "yesterday"}, {"name": "x", "role": "user", "expires": "2000-01-01"},
             {"name": "x", "role": "user", "models": []}, {"name": "x", "role": "user", "unknown": 1}, "not json"]:
    case(f"admin create key {json.dumps(body)[:64]}", 400, path="/admin/v1/keys", body=body, auth="admin")
case("admin revoke an unknown key", 404, path="/admin/v1/keys/key_000000000000/revoke", auth="admin", body="")
case("admin tenant with a bad limit", 400, method="PUT", path="/admin/v1/tenants/acme", body={"rpm": "many"}, auth="admin")
case("admin tenant with a bad name", 400, method="PUT", path="/admin/v1/tenants/a%20b", body={"rpm": 1}, auth="admin")
case("admin usage with a bad day", 400, method="GET", path="/admin/v1/usage?since=yesterday", auth="admin")
case("admin audit limit 0", 400, method="GET", path="/admin/v1/audit?limit=0", auth="admin")
case("admin deploy an unknown version", 404, path="/admin/v1/models/m/deploy", body={"version": "nope"}, auth="admin")
case("admin canary at 150 %", 400, path="/admin/v1/models/m/canary", body={"version": "boot", "percent": 150}, auth="admin")
case("admin register with a bad body", 400, path="/admin/v1/models/m/versions", body={"version": 5}, auth="admin")
case("admin unknown action", 404, path="/admin/v1/models/m/explode", body="{}", auth="admin")

# Tokenize.
for body in ["{}", "{\"prompt\": 5}", "[1]", "{\"tokens\": [\"a\"]}"]:
    case(f"tokenize {body}", 400, path="/tokenize", body=body)
case("detokenize ids out of range", 400, path="/detokenize", body={"tokens": [10**10]})

out = Path(__file__).with_name("bad_inputs.json")
out.write_text(json.dumps(cases, indent=1, ensure_ascii=True) + "\n")
print(f"{len(cases)} cases -> {out}")
