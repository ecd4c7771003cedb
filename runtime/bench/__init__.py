"""`rewrite bench`: load a plan in process (or a running sidecar over HTTP) and hold the measured
latency, throughput, memory and parity against the deployment contract (docs/serve.md).

    contract  the gates and their defaults (HAILO.md's seed contract), --contract FILE.toml
    measure   single-stream and concurrent load in process; the bare onnxruntime reference (--against)
    http_load the same against a running sidecar (--url)
    report    the table for people and the JSON for programs
    options   flags of `rewrite bench` and the call behind the verb

Standard library + numpy + onnxruntime only: works on a Pi-light install.
"""
