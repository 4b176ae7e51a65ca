"""4-bit weights that stay trainable after inference on a CPU.

bitsandbytes 0.50, on a CPU with AVX-512 BF16, repacks a `Linear4bit` weight into an inference-only layout
the first time the layer runs in eval mode on an input without gradient (`_convert_weight_packed_for_cpu`)
and leaves it so. From then on `matmul_4bit` takes `gemv_4bit`, which has no backward: a training step
after any generation (dev selection, a sample answer) silently loses the gradient through the frozen base
weights. bitsandbytes' own inverse is lossy (it rounds the block scales to bf16 and quantises them again),
so the weights would drift a little with every evaluation.

`keep_trainable_after_inference` keeps the fast packed path for inference and puts back the exact weight
and quantisation state, from a reference kept aside, before any forward that records gradients.
`autograd_fallback_is_an_error` turns torch's "an autograd kernel was not registered" warning into an
error, so a missing backward can never again pass silently.
"""
from __future__ import annotations

import contextlib
import copy
import warnings

import torch

NO_AUTOGRAD_KERNEL = r".*an autograd kernel was not registered.*"


def _linear4bit_class():
    try:
        import bitsandbytes as bnb
    except ImportError:  # no bitsandbytes: no 4-bit layers to guard
        return None
    return bnb.nn.Linear4bit


def _is_packed(weight) -> bool:
    return bool(getattr(getattr(weight, "quant_state", None), "packing_format_for_cpu", False))


def _restore_before_grad_forward(module, args):
    """Forward pre-hook: record the unpacked weight; before a gradient-recording forward, restore it."""
    weight = module.weight
    saved = getattr(module, "_unpacked_weight", None)
    if saved is not None and saved[0] is not weight:
        saved = None  # the weight was replaced (an adapter merged into it, a reload): forget the old one
    if not _is_packed(weight):
        if saved is None or saved[1] is not weight.data:
            qs = getattr(weight, "quant_state", None)
            if qs is not None:
                # packing mutates the QuantState in place and swaps weight.data: keep the tensor and a copy
                module._unpacked_weight = (weight, weight.data, copy.copy(qs))
        return None
    if torch.is_grad_enabled() and saved is not None:
        _, data, qs = saved
        fresh = copy.copy(qs)  # the next packing mutates what it is given; keep our copy pristine
        weight.data = data
        weight.quant_state = fresh
        if getattr(module, "quant_state", None) is not None:
            module.quant_state = fresh
    return None


def keep_trainable_after_inference(model) -> int:
    """Register the restore hook on every CPU `Linear4bit` of `model`; returns how many layers it guards.
    Safe to call twice (a layer is guarded once)."""
    cls = _linear4bit_class()
    if cls is None:
        return 0
    guarded = 0
    for module in model.modules():
        if not isinstance(module, cls) or getattr(module, "_restore_hook", None) is not None:
            continue
        if module.weight.device.type != "cpu":
            continue  # the packed layout exists on CPU only
        module._restore_hook = module.register_forward_pre_hook(_restore_before_grad_forward)
        guarded += 1
    return guarded


def packed_layers(model) -> int:
    """How many 4-bit layers are in bitsandbytes' inference-only CPU layout now (tests and diagnostics)."""
    cls = _linear4bit_class()
    return 0 if cls is None else sum(isinstance(m, cls) and _is_packed(m.weight) for m in model.modules())


@contextlib.contextmanager
def autograd_fallback_is_an_error():
    """Within the block, an op without a backward that autograd is asked to differentiate raises instead of
    warning "may lead to silently incorrect behavior"."""
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=NO_AUTOGRAD_KERNEL)
        yield
