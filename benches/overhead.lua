-- One-token completions: what the server adds around the model.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model": "bench", "prompt": "Hi", "max_tokens": 1, "temperature": 0}'
