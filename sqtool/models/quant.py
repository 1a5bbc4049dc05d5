"""Quantization presets, named by what they do (Brevitas style).

A preset says which Brevitas quantizer each role in a student gets. Both presets are chosen so the
exported model runs real integer kernels and maps 1:1 onto TFLite int8 (see docs/toolchain facts):

- weights: signed int8, narrow range [-127, 127], symmetric (TFLite's int8 weight convention);
  per output channel for convolutions, per tensor for the fully connected layer (per-channel FC does
  not convert reliably to TFLite);
- biases: int32 with scale = input scale * weight scale (`Int32Bias`): onnxruntime then runs
  QLinearConv/QGemm instead of float convolutions between Q/DQ pairs;
- activations after ReLU: unsigned 8-bit per tensor (`Uint8ActPerTensorFloat`); in TFLite this is
  int8 with zero point -128 and the same scale, exactly;
- the model's input and output: signed int8 per tensor (`Int8ActPerTensorFloat`), the edges of the
  deployed model.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqtool.core import SqtoolError


@dataclass(frozen=True)
class QuantPreset:
    name: str
    conv_weight: type
    fc_weight: type
    bias: type
    relu_act: type        # activations after ReLU (and the pooled features)
    io_act: type          # model input and output
    description: str


def _presets() -> dict[str, QuantPreset]:
    from brevitas.quant import (Int8ActPerTensorFloat, Int8WeightPerChannelFloat, Int8WeightPerTensorFloat,
                                Int32Bias, Uint8ActPerTensorFloat)
    return {
        "int8_w_per_channel_a_per_tensor": QuantPreset(
            "int8_w_per_channel_a_per_tensor", Int8WeightPerChannelFloat, Int8WeightPerTensorFloat, Int32Bias,
            Uint8ActPerTensorFloat, Int8ActPerTensorFloat,
            "int8 weights per output channel (FC per tensor), int32 bias, uint8 activations after ReLU, "
            "int8 input/output, all scales float, per tensor"),
        "int8_w_per_tensor_a_per_tensor": QuantPreset(
            "int8_w_per_tensor_a_per_tensor", Int8WeightPerTensorFloat, Int8WeightPerTensorFloat, Int32Bias,
            Uint8ActPerTensorFloat, Int8ActPerTensorFloat,
            "int8 weights per tensor, int32 bias, uint8 activations after ReLU, int8 input/output"),
    }


PRESET_NAMES = ("int8_w_per_channel_a_per_tensor", "int8_w_per_tensor_a_per_tensor")


def get_preset(name: str) -> QuantPreset:
    presets = _presets()
    if name not in presets:
        raise SqtoolError(f"unknown quantization preset '{name}' (known: {', '.join(presets)})")
    return presets[name]
