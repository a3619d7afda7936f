"""Device and numeric precision choices, in one place for training and inference.

``precision="auto"`` means bf16 autocast where the hardware runs it natively (CUDA with bf16, CPUs with
AVX512-BF16 or AMX), fp16 on older GPUs, and fp32 elsewhere. Weights and optimizer state stay fp32.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bertkit.exceptions import ConfigError

if TYPE_CHECKING:  # imported in the functions: a prediction with ONNX Runtime on the CPU never imports torch
    import torch

GPU_DEVICE_FILES = (
    "/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia", "/sys/module/nvidia", "/dev/kfd", "/sys/module/amdgpu",
    "/dev/dxg", "/dev/nvhost-ctrl-gpu", "/sys/module/nvgpu",
)  # fmt: skip
"""What a GPU that torch could use leaves on Linux, even before a first CUDA program creates the NVIDIA device
files: the NVIDIA driver's device files, /proc entry and kernel module, AMD's ROCm (kfd, amdgpu), WSL's GPU
(dxg) and Jetson's (nvhost, nvgpu)."""


def resolve_device(name: str = "auto") -> torch.device:
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device must be auto, cpu, cuda or cuda:N (got {name!r})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: no CUDA GPU is visible; use --device cpu")
    return device


def device_type(name: str = "auto") -> str:
    """``resolve_device(name).type`` (``cpu`` or ``cuda``), without importing torch (1.5 s) where the answer is
    known without it: ``cpu`` asked, or ``auto`` on a Linux machine with no GPU device file (where torch would
    find no GPU either)."""
    if name == "cpu" or (name == "auto" and not gpu_may_be_visible()):
        return "cpu"
    return resolve_device(name).type


def gpu_may_be_visible() -> bool:
    """False only where ``torch.cuda.is_available()`` must be False: Linux without any of
    :data:`GPU_DEVICE_FILES`. True elsewhere (other systems, or torch already imported: then ask it)."""
    if "torch" in sys.modules or not sys.platform.startswith("linux"):
        return True
    return any(Path(path).exists() for path in GPU_DEVICE_FILES)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``; None means plain fp32."""
    import torch

    if precision == "fp32":
        return None
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        # CPUs with native bf16 (AVX512-BF16, AMX) run bf16 matmuls about 1.6x faster than fp32 here.
        return torch.bfloat16 if cpu_has_native_bf16() else None
    if precision == "fp16" and device.type == "cpu":
        raise ConfigError("--precision fp16 needs a GPU; on CPU use bf16 or fp32")
    return torch.bfloat16 if precision == "bf16" else torch.float16


def inference_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for prediction: the same choice as training.

    On CPUs with native bf16, ``auto`` predicts in bf16: 1.8x the fp32 throughput on this project's benchmark
    machine, with the same rotten_tomatoes test accuracy (benchmarks/RESULTS.md); logits then differ from plain
    transformers in the third decimal. ``fp32`` gives bit-for-bit agreement with transformers instead. A model
    trained with fp16 on a GPU predicts on a CPU as ``auto`` would (CPUs have no fp16 autocast).
    """
    if precision == "fp16" and device.type == "cpu":
        precision = "auto"
    return autocast_dtype(precision, device)


def predict_batch_size(requested: int | None, device: torch.device | str) -> int:
    """Most texts per forward pass at prediction: ``requested``, else 64 on CPU and 1024 on a GPU.

    Passes are also capped at 16,384 padded tokens (``inference_batches``), so long texts get fewer per pass
    and memory stays bounded. On CPU a pass of 64 keeps activations in cache and is as fast as larger ones; on a
    GPU each pass also pays a fixed cost of kernel launches and host syncs: on the H200, BERT-base on SST-2
    sentences predicted 5,700 sentences/s with 64, 11,400 with 256 and 17,500 with 1024 (benchmarks/RESULTS.md).
    """
    if requested is not None:
        return requested
    kind = device.split(":")[0] if isinstance(device, str) else device.type
    return 1024 if kind == "cuda" else 64


def cpu_has_native_bf16() -> bool:
    import torch

    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def autocast(device: torch.device, dtype: torch.dtype | None, cache_enabled: bool = True):
    if dtype is None:
        return contextlib.nullcontext()
    import torch

    return torch.autocast(device_type=device.type, dtype=dtype, cache_enabled=cache_enabled)
