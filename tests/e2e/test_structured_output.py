"""response_format json_object / json_schema and tool calls, through the
official client. Constrained decoding guarantees the shape: whenever a reply
ends by itself (finish_reason stop or tool_calls) it parses and matches its
schema, whatever the weights; the tiny preset's random weights make that a
hard test, the default model a realistic one."""

import json
from pathlib import Path

import httpx
import jsonschema
import openai
import pytest
from openai import OpenAI

from conftest import SERVED_NAME, serve_until_done

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 24},
        "age": {"type": "integer", "minimum": 0},
        "languages": {"type": "array", "items": {"enum": ["en", "fr", "de"]}, "maxItems": 3},
        "employed": {"type": "boolean"},
        "address": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "zip": {"type": ["string", "null"]}},
            "required": ["city"],
        },
    },
    "required": ["name", "age"],
}

# Every string and list bounded: random weights close what they open.
TIGHT = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 8},
        "age": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "maxItems": 2},
        "address": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 6}, "zip": {"type": ["string", "null"], "maxLength": 5}},
            "required": ["city"],
        },
        "employed": {"type": "boolean"},
    },
    "required": ["name", "age"],
}

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
            "required": ["city"],
        },
    },
}
CLOCK = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}


def schema_format(schema):
    return {"type": "json_schema", "json_schema": {"name": "person", "schema": schema}}


def chat(client, content, **kw):
    args = dict(model=SERVED_NAME, messages=[{"role": "user", "content": content}], max_tokens=120, temperature=0)
    args.update(kw)
    return client.chat.completions.create(**args)


def test_json_object_parses(client):
    r = chat(client, "Give a JSON object with two keys, name and color, for a cat.", response_format={"type": "json_object"})
    c = r.choices[0]
    assert c.finish_reason == "stop", c.message.content
    assert isinstance(json.loads(c.message.content), dict)


def test_json_schema_output_validates(client):
    r = chat(client, "Give me a person as JSON.", response_format=schema_format(PERSON), n=3, temperature=0.8, seed=7)
    stopped = [c for c in r.choices if c.finish_reason == "stop"]
    assert stopped, [c.message.content for c in r.choices]
    for c in stopped:
        jsonschema.validate(json.loads(c.message.content), PERSON)


def test_json_schema_streams_to_the_same_text(client):
    args = dict(response_format=schema_format(PERSON), max_tokens=80)
    whole = chat(client, "A person, please.", **args).choices[0].message.content
    stream = chat(client, "A person, please.", stream=True, **args)
    parts = [ch.choices[0].delta.content or "" for ch in stream if ch.choices]
    assert "".join(parts) == whole


@pytest.mark.parametrize(
    "fmt, needle",
    [
        (schema_format({"type": "string", "pattern": "^a+$"}), "pattern"),
        (schema_format({"type": "integer", "maximum": 5}), "maximum"),
        (schema_format({"type": "object", "frobnicate": 1}), "frobnicate"),
        ({"type": "json_schema", "json_schema": {"name": "x"}}, "schema"),
        ({"type": "yaml"}, "yaml"),
    ],
)
def test_schemas_it_cannot_enforce_are_400(client, fmt, needle):
    with pytest.raises(openai.BadRequestError) as e:
        chat(client, "hi", response_format=fmt, max_tokens=2)
    assert e.value.body["param"] == "response_format"
    assert needle in e.value.body["message"]


def test_required_tool_call_round_trip(client):
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    r = client.chat.completions.create(
        model=SERVED_NAME, messages=messages, tools=[WEATHER, CLOCK], tool_choice="required", max_tokens=80, temperature=0
    )
    c = r.choices[0]
    assert c.finish_reason == "tool_calls", c.message
    call = c.message.tool_calls[0]
    assert call.type == "function" and call.id
    assert call.function.name in ("get_weather", "get_time")
    args = json.loads(call.function.arguments)
    if call.function.name == "get_weather":
        jsonschema.validate(args, WEATHER["function"]["parameters"])
    # The result goes back; the model answers in words.
    messages += [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temperature_c": 18, "sky": "clear"})},
    ]
    r = client.chat.completions.create(model=SERVED_NAME, messages=messages, tools=[WEATHER, CLOCK], max_tokens=60, temperature=0)
    c = r.choices[0]
    if c.finish_reason == "tool_calls":
        assert c.message.tool_calls[0].function.name in ("get_weather", "get_time")
    else:
        assert c.message.content and not c.message.tool_calls


def test_named_tool_choice_streams_as_deltas(client):
    stream = client.chat.completions.create(
        model=SERVED_NAME,
        messages=[{"role": "user", "content": "Weather in Rome?"}],
        tools=[WEATHER, CLOCK],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=80,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    calls, finish, usage = {}, None, None
    for ch in stream:
        usage = ch.usage or usage
        if not ch.choices:
            continue
        finish = ch.choices[0].finish_reason or finish
        for d in ch.choices[0].delta.tool_calls or []:
            entry = calls.setdefault(d.index, {"id": None, "name": "", "arguments": ""})
            entry["id"] = d.id or entry["id"]
            if d.function:
                entry["name"] += d.function.name or ""
                entry["arguments"] += d.function.arguments or ""
    assert finish == "tool_calls"
    assert usage and usage.completion_tokens > 0
    assert [c["name"] for c in calls.values()] == ["get_weather"], "a named choice is one call"
    for c in calls.values():
        assert c["id"]
        jsonschema.validate(json.loads(c["arguments"]), WEATHER["function"]["parameters"])


def test_parallel_tool_calls_false_gives_one_call(client):
    r = client.chat.completions.create(
        model=SERVED_NAME,
        messages=[{"role": "user", "content": "Weather in Oslo and the time?"}],
        tools=[WEATHER, CLOCK],
        tool_choice="required",
        parallel_tool_calls=False,
        max_tokens=80,
        temperature=0,
    )
    assert r.choices[0].finish_reason == "tool_calls"
    assert len(r.choices[0].message.tool_calls) == 1


@pytest.mark.parametrize(
    "kw, param",
    [
        ({"tools": [{"type": "function", "function": {"name": "bad name!"}}]}, "tools"),
        ({"tools": [{"type": "retrieval"}]}, "tools"),
        ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tools": [WEATHER], "tool_choice": "sometimes"}, "tool_choice"),
    ],
)
def test_bad_tools_are_400(client, kw, param):
    with pytest.raises(openai.BadRequestError) as e:
        chat(client, "hi", max_tokens=2, **kw)
    assert e.value.body["param"] == param


@pytest.fixture(scope="module")
def tiny(bin_path, tmp_path_factory):
    log = tmp_path_factory.mktemp("tiny-structured") / "server.log"
    yield from serve_until_done(bin_path, log, ["--load-format", "dummy", "--model", "tiny"])


def sampled(base, n, **kw):
    """The tiny preset's replies to one message at n seeds, sampled at
    temperature 1."""
    client = OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=60)
    for seed in range(n):
        r = client.chat.completions.create(
            model="dummy-tiny", messages=[{"role": "user", "content": "x"}], temperature=1.0, seed=seed, **kw
        )
        yield r.choices[0]


def test_random_weights_still_write_valid_json(tiny):
    """Random weights sample anything at all; the grammar is all that keeps
    the output valid. Every reply that ends by itself must validate."""
    stopped = 0
    for c in sampled(tiny, 12, response_format=schema_format(TIGHT), max_tokens=400):
        if c.finish_reason == "stop":
            stopped += 1
            jsonschema.validate(json.loads(c.message.content), TIGHT)
    assert stopped >= 3, "too few replies finished to test anything"


def test_completions_take_response_format_too(server):
    r = httpx.post(
        f"{server}/v1/completions",
        json={"prompt": "A JSON list of three colours:", "max_tokens": 60, "temperature": 0,
              "response_format": {"type": "json_schema", "json_schema": {"name": "c", "schema": {
                  "type": "array", "items": {"type": "string", "maxLength": 12}, "minItems": 3, "maxItems": 3}}}},
        timeout=120,
    ).json()
    c = r["choices"][0]
    assert c["finish_reason"] == "stop", c
    colours = json.loads(c["text"])
    assert len(colours) == 3 and all(isinstance(x, str) for x in colours)


HERMES = Path(__file__).parent / "data" / "hermes.jinja"
SMALL_WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 6}, "unit": {"enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
}


@pytest.fixture(scope="module")
def hermes(bin_path, tmp_path_factory):
    """The tiny preset behind a template that writes <tool_call> markup, as
    Qwen's do."""
    log = tmp_path_factory.mktemp("tiny-hermes") / "server.log"
    yield from serve_until_done(
        bin_path, log, ["--load-format", "dummy", "--model", "tiny"], "--chat-template", str(HERMES)
    )


def rendered(base, **body):
    ids = httpx.post(f"{base}/tokenize", json=body).json()["tokens"]
    return httpx.post(f"{base}/detokenize", json={"tokens": ids}).json()["prompt"]


def test_hermes_templates_get_the_tools_and_past_calls(hermes):
    history = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "rain"},
    ]
    text = rendered(hermes, messages=history, tools=[SMALL_WEATHER])
    assert '"name": "get_weather"' in text.split("</tools>")[0]
    # Arguments sent as a JSON string reach the template as an object.
    assert '{"name": "get_weather", "arguments": {"city": "Oslo"}}' in text
    assert "<tool_response>\nrain\n</tool_response>" in text


def test_generic_templates_learn_the_tools_from_the_system_message(server):
    text = rendered(server, messages=[{"role": "user", "content": "weather?"}], tools=[SMALL_WEATHER])
    assert "get_weather" in text and "tool_calls" in text
    assert "get_weather" not in rendered(server, messages=[{"role": "user", "content": "weather?"}])


def test_hermes_required_calls_parse_whatever_the_weights(hermes):
    calls = 0
    tools = dict(tools=[SMALL_WEATHER], tool_choice="required", parallel_tool_calls=False, max_tokens=200)
    for c in sampled(hermes, 8, **tools):
        if c.finish_reason == "tool_calls":
            calls += 1
            for call in c.message.tool_calls:
                assert call.function.name == "get_weather"
                jsonschema.validate(json.loads(call.function.arguments), SMALL_WEATHER["function"]["parameters"])
        else:
            assert c.finish_reason == "length"
    assert calls >= 3


def test_hermes_auto_replies_are_content_when_no_call_is_written(hermes):
    client = OpenAI(base_url=f"{hermes}/v1", api_key="unused", max_retries=0, timeout=60)
    r = client.chat.completions.create(
        model="dummy-tiny", messages=[{"role": "user", "content": "x"}], tools=[SMALL_WEATHER], max_tokens=16, seed=1
    )
    c = r.choices[0]
    assert c.finish_reason in ("stop", "length") and not c.message.tool_calls
    assert isinstance(c.message.content, str)
