"""Precision by capability (pyramidpose.utils.device), with mocked CPU/GPU capabilities."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from pyramidpose.errors import ConfigError
from pyramidpose.utils import device as dev


def _cpu(monkeypatch: pytest.MonkeyPatch, capability: str, flags: set[str]) -> None:
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    monkeypatch.setattr(dev, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(dev, "emulated_bf16_cost", lambda: 37.0)


def test_amx_cpu_picks_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    _cpu(monkeypatch, "AVX512", {"avx2", "avx512f", "amx_tile", "amx_bf16"})
    p = dev.choose_precision("auto", "cpu")
    assert (p.name, p.dtype, p.use_grad_scaler) == ("bf16", torch.bfloat16, False)
    assert "amx_bf16" in p.reason and "native" in p.reason


def test_avx512_bf16_cpu_picks_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    _cpu(monkeypatch, "AVX512", {"avx2", "avx512f", "avx512_bf16"})
    assert dev.choose_precision("auto", torch.device("cpu")).name == "bf16"


def test_avx2_only_cpu_picks_fp32_and_warns_on_explicit_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    _cpu(monkeypatch, "AVX2", {"avx2", "fma"})
    p = dev.choose_precision("auto", "cpu")
    assert p.name == "fp32" and "emulated" in p.reason and "AVX2" in p.reason
    with pytest.warns(UserWarning, match=r"emulates it .*37\.0x slower"):
        forced = dev.choose_precision("bf16", "cpu")
    assert forced.name == "bf16"
    # an AVX-512 CPU without the BF16 extension emulates it too
    _cpu(monkeypatch, "AVX512", {"avx2", "avx512f"})
    assert dev.choose_precision("auto", "cpu").name == "fp32"


def test_explicit_fp32_and_old_none_spelling(monkeypatch: pytest.MonkeyPatch) -> None:
    _cpu(monkeypatch, "AVX512", {"amx_bf16"})
    assert dev.choose_precision("fp32", "cpu").name == "fp32"
    assert dev.choose_precision("none", "cpu").name == "fp32"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert dev.choose_precision("bf16", "cpu").name == "bf16"  # native: no warning
    with pytest.raises(ConfigError, match="fp16 precision needs CUDA"):
        dev.choose_precision("fp16", "cpu")
    with pytest.raises(ConfigError, match="'fp8' is not one of"):
        dev.choose_precision("fp8", "cpu")


@pytest.mark.parametrize(("bf16", "expected", "scaler"), [(True, "bf16", False), (False, "fp16", True)])
def test_cuda_with_and_without_bf16(monkeypatch: pytest.MonkeyPatch, bf16: bool, expected: str, scaler: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    p = dev.choose_precision("auto", "cuda")
    assert (p.name, p.device_type, p.use_grad_scaler) == (expected, "cuda", scaler)


def test_resolve_device_errors_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert dev.resolve_device("auto") == torch.device("cpu")
    assert dev.resolve_device(None) == torch.device("cpu")
    for name, text in (("cuda", "CUDA is not available"), ("cuda:1", "CUDA is not available"), ("gpu7", "unknown device")):
        with pytest.raises(ConfigError, match=text) as exc:
            dev.resolve_device(name)
        assert "\n" not in str(exc.value)


def test_machine_summary_names_cpu_capability_and_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    _cpu(monkeypatch, "AVX2", {"avx2"})
    s = dev.machine_summary()
    assert "AVX2" in s and "native bf16 no" in s and f"{torch.get_num_threads()} torch threads" in s


def test_autocast_context_and_low_precision_copy_match_plain_autocast() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.GELU(), nn.Flatten(), nn.LayerNorm(8 * 6 * 6), nn.Linear(288, 5)).eval()
    x = torch.randn(2, 3, 8, 8)
    bf16 = dev.Precision("bf16", "cpu", "test")
    fp32 = dev.Precision("fp32", "cpu", "test")
    assert dev.low_precision_copy(model, fp32) is model
    twin = dev.low_precision_copy(model, bf16)
    assert twin[0].weight.dtype == torch.bfloat16 and twin[3].weight.dtype == torch.float32
    assert model[0].weight.dtype == torch.float32  # the original is untouched
    with torch.no_grad(), dev.autocast_context(bf16):
        ref = model(x)
        out = twin(x)
    assert ref.dtype == torch.bfloat16
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    with torch.no_grad(), dev.autocast_context(fp32):
        assert model(x).dtype == torch.float32
