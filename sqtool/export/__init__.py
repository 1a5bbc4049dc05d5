"""Export: ONNX, TFLite and C firmware source, each executed and compared with the model it came from.

    sqtool export --model runs/quantize/<run> --target onnx,tflite,c [--out DIR] [--explain]

Modules, in the order data flows:
    intgraph   the integer model inside a Brevitas student (int8 weights, int32 biases, scales, zero points)
    reference  numpy integer reference with TFLite's arithmetic (double / single rounding, LiteRT flavour)
    onnx       float (torch.onnx) and int8 (Brevitas QCDQ) ONNX, onnxruntime helpers
    tflite     float32 and full-integer int8 flatbuffers written directly with the TFLite schema
    c          self-contained C99 sq_model.h / sq_model.c (+ host shared-library build for parity)
    metadata   the metadata every artifact carries; refusal of checkpoints that lack it
    parity     comparisons, the report table, per-layer explain
    cli        the `sqtool export` command (`export(ExportConfig)` is the Python entry point)
    fixtures   self-made compress-like run dirs for tests and benchmarks
"""
