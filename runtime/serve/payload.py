"""Request bodies -> validated input arrays, and outputs -> response documents.

Everything a client can get wrong is caught here, before the plan sees it: not JSON, not an
object, unknown or missing fields, ragged or non-numeric arrays, wrong shapes, NaN / Inf (also as
the non-standard JSON tokens NaN / Infinity), values that overflow the input dtype. Each failure is
one RequestError with the HTTP status, an error kind (a metric label) and one line for the client.

Shapes: an input declared [1, *S] in plan.json is accepted as S (one window, e.g. [100][9]) or as
[1, *S]; the response mirrors the request (unbatched in, leading 1 dropped from outputs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from ..schema import TensorSpec

SINGLE_INPUT_KEY = "x"  # the seed contract's field name, accepted for any one-input plan


class RequestError(Exception):
    def __init__(self, status: int, kind: str, message: str):
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


def _reject_constant(token: str):
    raise RequestError(422, "bad_value", f"{token} is not a finite number")


@dataclass(frozen=True)
class _InputForm:
    spec: TensorSpec  # the plan's shape (a dim that is not a positive int matches any size)
    window: TensorSpec | None  # the shape without a leading batch of 1, if it has one
    dtype: np.dtype


class PayloadCodec:
    """Decodes request bodies for one plan's inputs and encodes its outputs."""

    def __init__(self, inputs: list[TensorSpec], output_keys: dict[str, str]):
        self.forms = {}
        for t in inputs:
            window = TensorSpec(t.name, tuple(t.shape[1:]), t.dtype) if len(t.shape) > 1 and t.shape[0] == 1 else None
            self.forms[t.name] = _InputForm(t, window, np.dtype(t.dtype))
        self.keys = {t.name: t.name for t in inputs}
        if len(inputs) == 1 and inputs[0].name != SINGLE_INPUT_KEY:
            self.keys = {SINGLE_INPUT_KEY: inputs[0].name, inputs[0].name: inputs[0].name}
        self.output_keys = output_keys

    def describe(self) -> dict:
        """The request fields and the shapes they take, for /healthz and error messages."""
        if SINGLE_INPUT_KEY in self.keys:
            return {SINGLE_INPUT_KEY: self._shapes_text(self.forms[self.keys[SINGLE_INPUT_KEY]])}
        return {name: self._shapes_text(form) for name, form in self.forms.items()}

    @staticmethod
    def _shapes_text(form: _InputForm) -> str:
        full = list(form.spec.shape)
        return f"{list(form.window.shape)} or {full}" if form.window is not None else str(full)

    def decode(self, body: bytes) -> tuple[dict[str, np.ndarray], bool]:
        """(feeds for Plan.run, whether the request was batched)."""
        if not body:
            raise RequestError(422, "bad_json", 'empty body: expected a JSON object like {"x": [[...], ...]}')
        try:
            doc = json.loads(body, parse_constant=_reject_constant)
        except RequestError:
            raise
        except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError; absurd nesting
            raise RequestError(422, "bad_json", f"body is not valid JSON ({str(e).splitlines()[0]})") from None
        if not isinstance(doc, dict):
            raise RequestError(422, "bad_json", f"expected a JSON object with field(s) {self.describe()}")
        unknown = [k for k in doc if k not in self.keys]
        if unknown:
            raise RequestError(422, "bad_field", f"unknown field(s) {unknown}; expected {self.describe()}")
        feeds, batched = {}, None
        for key, value in doc.items():
            name = self.keys[key]
            if name in feeds:
                raise RequestError(
                    422, "bad_field", f"input {name!r} given twice (as {SINGLE_INPUT_KEY!r} and by name)"
                )
            feeds[name], was_batched = self._array(key, value, self.forms[name])
            batched = was_batched if batched is None else batched
        missing = [n for n in self.forms if n not in feeds]
        if missing:
            raise RequestError(422, "bad_field", f"missing field(s) {missing}; expected {self.describe()}")
        return feeds, bool(batched)

    def _array(self, key: str, value, form: _InputForm) -> tuple[np.ndarray, bool]:
        try:
            a = np.asarray(value)
        except (ValueError, TypeError):  # ragged nesting
            raise RequestError(
                422, "bad_shape", f"{key!r}: nested lists of unequal lengths; expected {self._shapes_text(form)}"
            ) from None
        if a.dtype.kind not in "iuf":  # strings, booleans, objects (null, huge ints, dicts)
            raise RequestError(422, "bad_value", f"{key!r}: expected numbers, got {_kind_name(a)}")
        if form.spec.shape_matches(a.shape):
            batched = True
        elif form.window is not None and form.window.shape_matches(a.shape):
            batched, a = False, a[np.newaxis]
        else:
            raise RequestError(422, "bad_shape", f"{key!r}: shape {list(a.shape)}, expected {self._shapes_text(form)}")
        if form.dtype.kind in "iu" and a.dtype.kind == "f":
            raise RequestError(422, "bad_value", f"{key!r}: expected integers ({form.dtype})")
        with np.errstate(over="ignore", invalid="ignore"):
            x = a.astype(form.dtype)
        if form.dtype.kind == "f" and not np.isfinite(x).all():
            raise RequestError(422, "bad_value", f"{key!r}: NaN, Inf or a value beyond {form.dtype} range")
        if form.dtype.kind in "iu" and not np.array_equal(x, a):
            raise RequestError(422, "bad_value", f"{key!r}: value out of {form.dtype} range")
        return x, batched

    def encode(self, outputs: dict[str, np.ndarray], batched: bool) -> dict:
        """{response key: nested list}; the leading batch of 1 dropped when the request had none."""
        doc = {}
        for name, key in self.output_keys.items():
            v = np.asarray(outputs[name])
            if not batched and v.ndim > 1 and v.shape[0] == 1:
                v = v[0]
            doc[key] = v.tolist()
        return doc


def _kind_name(a: np.ndarray) -> str:
    return {
        "b": "booleans",
        "U": "strings",
        "S": "strings",
        "O": "non-numeric values (null, objects or huge integers)",
    }.get(a.dtype.kind, str(a.dtype))
