"""The FastAPI app: POST /infer (and /encode, the seed's older name), GET /healthz, GET /metrics.

Bodies are read as bytes and decoded by payload.PayloadCodec (not pydantic): one clear message per
bad request, and 900 floats cost ~0.1 ms to check instead of a model validation per element.
The Content-Type is not checked, so `curl -d @window.json` works as it is.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from .executor import QueueFull
from .metrics import CONTENT_TYPE
from .payload import RequestError
from .service import Service

INFER_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "one field per plan input ('x' for a one-input plan): nested lists of "
                    "numbers in the input's shape, with or without the leading batch of 1",
                    "additionalProperties": {"type": "array"},
                }
            }
        },
    }
}


async def read_body(request: Request, limit: int) -> bytes:
    """The body, or 413 as soon as it is known to exceed `limit` bytes (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, "too_large", f"body of {declared} bytes is over the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, "too_large", f"body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(service: Service) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        service.close()  # after uvicorn has answered the in-flight requests: finish the queue, free the plan

    app = FastAPI(title="hailo-rewriter plan sidecar", lifespan=lifespan)
    metrics = service.metrics

    async def infer(request: Request, endpoint: str) -> Response:
        t0 = time.perf_counter()
        response: Response | None = None
        try:
            body = await read_body(request, service.config.max_body_bytes)
            feeds, batched = service.codec.decode(body)
            result = await asyncio.wrap_future(service.submit(feeds))
            service.account(result)
            response = JSONResponse(service.codec.encode(result.outputs, batched))
        except RequestError as e:
            metrics.errors.labels(e.kind).inc()
            response = JSONResponse({"detail": e.message}, status_code=e.status)
        except QueueFull as e:
            metrics.errors.labels("queue_full").inc()
            response = JSONResponse({"detail": str(e)}, status_code=503, headers={"Retry-After": str(e.retry_after_s)})
        except Exception as e:  # noqa: BLE001 - a plan failure the fallback could not absorb
            metrics.errors.labels("plan_error").inc()
            service.state.record_error(f"{endpoint}: {e}")
            response = JSONResponse({"detail": f"inference failed: {str(e).splitlines()[0]}"}, status_code=500)
        finally:
            metrics.latency.labels(endpoint).observe(time.perf_counter() - t0)
            # no response: the client went away while queued (the task was cancelled)
            metrics.requests.labels(endpoint, str(response.status_code) if response else "cancelled").inc()
        return response

    @app.post("/infer", openapi_extra=INFER_BODY)
    async def infer_endpoint(request: Request):
        """Run the plan on one window: {"x": [[...] x T]} -> {output key: values}."""
        return await infer(request, "/infer")

    @app.post("/encode", openapi_extra=INFER_BODY)
    async def encode_endpoint(request: Request):
        """The seed sidecar's name for /infer; the same call."""
        return await infer(request, "/encode")

    @app.get("/healthz")
    async def healthz():
        return service.health()

    @app.get("/metrics")
    async def prometheus_metrics():
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return app
