"""HTTP sidecar for a plan (`rewrite serve`, docs/serve.md): the `serve` extra.

FastAPI, uvicorn and prometheus-client are imported only inside this package, and only by the
modules that need them (app, metrics, server); `config`, `payload`, `executor`, `runner` and
`health` are stdlib + numpy, so `rewrite bench` reuses them on an install without the extra.

    config    ServeConfig and the plan-output -> response-key mapping
    payload   request body -> validated arrays (422/413 before anything reaches the plan)
    executor  bounded queue of plan runs on worker threads (full -> 503 Retry-After)
    runner    one worker's plan, with the hailo -> onnxruntime fallback; stub outputs
    health    service state (/healthz): backend and why, plan sha256, uptime, last error
    metrics   prometheus-client registry (/metrics)
    service   ties the above together: load, warm up, infer, close
    app       the FastAPI app: /infer, /encode, /healthz, /metrics
    server    uvicorn with graceful SIGTERM; `serve(config)` is `rewrite serve`
"""
