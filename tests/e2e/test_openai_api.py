"""The HTTP API through the official `openai` client, against a real
server running the default model."""

import math
import re

import httpx
import openai
import pytest

from conftest import ALIAS, SERVED_NAME

PROMPT = "The capital of France is"


def greedy(client, **kw):
    args = dict(model=SERVED_NAME, prompt=PROMPT, max_tokens=8, temperature=0)
    args.update(kw)
    return client.completions.create(**args)


def test_health_ready_and_models(server, client):
    assert httpx.get(f"{server}/health").json() == {"status": "ok"}
    assert httpx.get(f"{server}/ready").status_code == 200
    models = client.models.list()
    assert [m.id for m in models.data] == [SERVED_NAME, ALIAS]
    assert models.data[0].object == "model"


def test_greedy_completion_is_deterministic_and_counts_tokens(client, server):
    a = greedy(client)
    b = greedy(client)
    assert a.choices[0].text == b.choices[0].text
    assert a.choices[0].text.strip(), "empty completion"
    assert a.choices[0].finish_reason == "length"
    assert a.usage.completion_tokens == 8
    ids = httpx.post(f"{server}/v1/completions", json={"prompt": PROMPT, "max_tokens": 1, "echo": True, "logprobs": 0, "temperature": 0}).json()
    n_prompt = len(ids["choices"][0]["logprobs"]["tokens"]) - 1
    assert a.usage.prompt_tokens == n_prompt
    assert a.usage.total_tokens == n_prompt + 8


def test_token_id_prompt_equals_text_prompt(client, server):
    echo = httpx.post(
        f"{server}/v1/completions",
        json={"prompt": PROMPT, "max_tokens": 1, "echo": True, "logprobs": 0, "temperature": 0, "return_tokens_as_token_ids": True},
    ).json()
    ids = [int(t.split(":")[1]) for t in echo["choices"][0]["logprobs"]["tokens"][:-1]]
    assert greedy(client, prompt=ids).choices[0].text == greedy(client).choices[0].text


def test_echo_with_logprobs_covers_prompt_and_completion(client):
    r = greedy(client, echo=True, logprobs=3, max_tokens=4)
    c = r.choices[0]
    assert c.text.startswith(PROMPT)
    lp = c.logprobs
    n = r.usage.prompt_tokens + 4
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset) == n
    assert lp.token_logprobs[0] is None and lp.top_logprobs[0] is None
    assert all(v <= 0 for v in lp.token_logprobs[1:])
    assert lp.text_offset == sorted(lp.text_offset)
    # Greedy: each generated token is the best of its alternatives.
    for tok, l, top in zip(lp.tokens[-4:], lp.token_logprobs[-4:], lp.top_logprobs[-4:]):
        assert len(top) <= 3
        assert math.isclose(max(top.values()), l, abs_tol=1e-6), (tok, l, top)


def test_return_tokens_as_token_ids(client):
    r = greedy(client, logprobs=1, max_tokens=3, extra_body={"return_tokens_as_token_ids": True})
    toks = r.choices[0].logprobs.tokens
    assert len(toks) == 3 and all(t.startswith("token_id:") and t[9:].isdigit() for t in toks)


def test_chat_completion_with_logprobs(client):
    r = client.chat.completions.create(
        model=SERVED_NAME,
        messages=[{"role": "system", "content": "You answer briefly."}, {"role": "user", "content": "What is 2+2?"}],
        max_tokens=12,
        temperature=0,
        logprobs=True,
        top_logprobs=2,
    )
    c = r.choices[0]
    assert c.message.role == "assistant" and c.message.content
    assert "<|im_end|>" not in c.message.content
    entries = c.logprobs.content
    assert len(entries) == r.usage.completion_tokens
    for e in entries:
        assert len(e.top_logprobs) == 2
        assert e.top_logprobs[0].token == e.token and math.isclose(e.top_logprobs[0].logprob, e.logprob, abs_tol=1e-6)
        assert bytes(e.bytes).decode("utf-8", "replace") == e.token or e.token.startswith("token_id:")


def test_chat_array_content_parts_equal_plain_string(client):
    plain = client.chat.completions.create(
        model=SERVED_NAME, messages=[{"role": "user", "content": "Say hi"}], max_tokens=6, temperature=0
    )
    parts = client.chat.completions.create(
        model=SERVED_NAME, messages=[{"role": "user", "content": [{"type": "text", "text": "Say hi"}]}], max_tokens=6, temperature=0
    )
    assert plain.choices[0].message.content == parts.choices[0].message.content


def test_stop_string_ends_generation_before_it(client):
    free = greedy(client, max_tokens=24).choices[0].text
    word = free.split()[1] if len(free.split()) > 1 else free.split()[0]
    r = greedy(client, max_tokens=24, stop=[word])
    assert r.choices[0].finish_reason == "stop"
    assert word not in r.choices[0].text
    assert free.startswith(r.choices[0].text)


def test_seed_makes_sampling_repeatable(client):
    a = greedy(client, temperature=1.0, seed=7, max_tokens=16)
    b = greedy(client, temperature=1.0, seed=7, max_tokens=16)
    assert a.choices[0].text == b.choices[0].text
    others = {greedy(client, temperature=1.0, seed=s, max_tokens=16).choices[0].text for s in range(8, 12)}
    assert len(others | {a.choices[0].text}) > 1, "different seeds never changed the sample"


def test_n_choices(client):
    r = greedy(client, n=2, temperature=1.0, seed=3, max_tokens=4)
    assert [c.index for c in r.choices] == [0, 1]
    assert r.usage.completion_tokens == 8


def test_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError) as e:
        greedy(client, model="nope")
    assert e.value.body["code"] == "model_not_found"


@pytest.mark.parametrize(
    "field,value",
    [
        ("temperature", 3.0),
        ("top_p", 0.0),
        ("max_tokens", 0),
        ("logprobs", 99),
        ("n", 0),
        ("presence_penalty", 2.5),
        ("frequency_penalty", -3.0),
        ("repetition_penalty", 0.0),
        ("logit_bias", {"x": 1}),
        ("logit_bias", {"5": 500}),
        ("logit_bias", {"99999999": 1}),
    ],
)
def test_out_of_range_fields_are_400(client, field, value):
    # Fields the client does not know travel in extra_body.
    kw = {"extra_body": {field: value}} if field == "repetition_penalty" else {field: value}
    with pytest.raises(openai.BadRequestError) as e:
        greedy(client, **kw)
    assert field in e.value.body["message"] or e.value.body["param"] == field


def test_context_overflow_is_400(client):
    with pytest.raises(openai.BadRequestError) as e:
        greedy(client, max_tokens=100_000)
    assert e.value.body["code"] == "context_length_exceeded"


def test_token_outside_vocabulary_is_400(client):
    with pytest.raises(openai.BadRequestError):
        greedy(client, prompt=[1, 2, 10_000_000])


def test_malformed_bodies_are_400_not_500(server):
    for body in [b"{not json", b"[]", b'{"prompt": 5}', b'{"messages": "hi"}']:
        for path in ["/v1/completions", "/v1/chat/completions"]:
            r = httpx.post(f"{server}{path}", content=body, headers={"content-type": "application/json"})
            assert r.status_code == 400, (path, body, r.text)
            assert r.json()["error"]["type"] == "invalid_request_error"


def test_bad_chat_roles_and_parts_are_400(client):
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=SERVED_NAME, messages=[{"role": "wizard", "content": "x"}])
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model=SERVED_NAME, messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]
        )


def test_unknown_route_is_404_and_wrong_method_405(server):
    assert httpx.get(f"{server}/v2/nothing").status_code == 404
    assert httpx.get(f"{server}/v1/completions").status_code == 405


def test_model_by_id(server, client):
    assert client.models.retrieve(SERVED_NAME).id == SERVED_NAME
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")


def test_tokenize_and_detokenize_round_trip(server):
    t = httpx.post(f"{server}/tokenize", json={"prompt": PROMPT}).json()
    assert t["count"] == len(t["tokens"]) > 0 and t["max_model_len"] >= 2048
    echo = httpx.post(
        f"{server}/v1/completions",
        json={"prompt": PROMPT, "max_tokens": 1, "echo": True, "logprobs": 0, "return_tokens_as_token_ids": True},
    ).json()
    ids = [int(x.split(":")[1]) for x in echo["choices"][0]["logprobs"]["tokens"][:-1]]
    assert t["tokens"] == ids
    assert httpx.post(f"{server}/detokenize", json={"tokens": t["tokens"]}).json() == {"prompt": PROMPT}
    chat = httpx.post(f"{server}/tokenize", json={"messages": [{"role": "user", "content": "hi"}]}).json()
    assert chat["count"] > t["count"] // 2
    # llama.cpp's field names work too.
    assert httpx.post(f"{server}/tokenize", json={"content": PROMPT}).json()["tokens"] == t["tokens"]
    assert httpx.post(f"{server}/detokenize", json={"tokens": [10**9]}).status_code == 400
    assert httpx.post(f"{server}/tokenize", json={}).status_code == 400


def test_unknown_fields_are_ignored(client):
    r = greedy(client, extra_body={"best_of_frobnication": 3, "guided_whatever": {"x": 1}})
    assert r.choices[0].text == greedy(client).choices[0].text


def test_http2_with_prior_knowledge(server):
    with httpx.Client(http1=False, http2=True, base_url=server) as h2:
        models = h2.get("/v1/models")
        assert models.http_version == "HTTP/2" and models.json()["data"][0]["id"] == SERVED_NAME
        r = h2.post("/v1/completions", json={"prompt": PROMPT, "max_tokens": 4, "temperature": 0})
        assert r.http_version == "HTTP/2" and r.json()["usage"]["completion_tokens"] == 4


def test_http1_keep_alive_reuses_one_connection(server):
    with httpx.Client(base_url=server) as h1:
        ports = set()
        for _ in range(3):
            r = h1.get("/health")
            assert r.http_version == "HTTP/1.1"
            ports.add(r.extensions["network_stream"].get_extra_info("client_addr")[1])
        assert len(ports) == 1


def test_aliases_answer_under_the_first_name(client):
    r = greedy(client, model=ALIAS)
    assert r.model == SERVED_NAME
    assert r.system_fingerprint and r.system_fingerprint.startswith("fp_switchyard-")


def test_request_ids_are_echoed_or_made(server):
    given = httpx.get(f"{server}/health", headers={"x-request-id": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = httpx.post(f"{server}/v1/completions", json={"prompt": "x", "max_tokens": 0})
    assert made.status_code == 400 and made.headers["x-request-id"].startswith("req-")


def test_wrong_content_type_is_415(server):
    r = httpx.post(f"{server}/v1/completions", content=b"prompt=hi", headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_logit_bias_forces_a_token(client):
    r = greedy(client, max_tokens=3, logprobs=0, logit_bias={"28": 100}, extra_body={"return_tokens_as_token_ids": True})
    assert r.choices[0].logprobs.tokens == ["token_id:28"] * 3


def test_penalties_discourage_repeats(client):
    prompts = ["a, a, a, a, a, a, a, a,", "yes yes yes yes yes yes yes yes"]
    run = lambda p, **kw: greedy(client, prompt=p, max_tokens=16, **kw).choices[0].text
    plain = [run(p) for p in prompts]
    # Left alone, the model goes on repeating itself…
    repeats = plain[0].count("a,")
    assert repeats >= 6, plain[0]
    # …frequency and repetition penalties break the loop; a presence
    # penalty (subtracted once per token) changes what it says.
    assert run(prompts[0], frequency_penalty=2.0).count("a,") < repeats
    assert run(prompts[0], extra_body={"repetition_penalty": 1.5}).count("a,") < repeats
    assert any(run(p, presence_penalty=2.0) != q for p, q in zip(prompts, plain))


def test_metrics_are_prometheus_text(server, client):
    greedy(client, max_tokens=1)
    r = httpx.get(f"{server}/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    lines = r.text.splitlines()
    assert "# TYPE switchyard_requests_total counter" in lines
    answered = [
        l for l in lines
        if l.startswith("switchyard_requests_total{") and 'endpoint="/v1/completions"' in l and 'status="200"' in l
    ]
    assert answered and float(answered[0].rsplit(" ", 1)[1]) >= 1, r.text
    assert any(l.startswith("switchyard_build_info{") for l in lines)
    info = [l for l in lines if l.startswith("switchyard_model_info{") and f'model="{SERVED_NAME}"' in l]
    assert len(info) == 1, r.text
    # The default model is the store's artifact: its digest is known.
    assert re.search(r'digest="sha256:[0-9a-f]{64}"', info[0]), info[0]

    def value(name):
        found = [l for l in lines if l.startswith(name + "{") and f'model="{SERVED_NAME}"' in l]
        assert len(found) == 1, (name, r.text)
        return float(found[0].rsplit(" ", 1)[1])

    # Nothing runs between requests: the batch is empty and holds no blocks
    # (cached prefixes are not held).
    assert value("switchyard_requests_running") == 0
    assert value("switchyard_requests_waiting") == 0
    assert value("switchyard_kv_cache_usage_ratio") == 0
    assert value("switchyard_engine_steps_total") >= 1
    assert value("switchyard_prefix_cache_queries_total") >= value("switchyard_prefix_cache_hits_total")
