"""Streaming wrist-PPG benchmark on host runtimes and emulated Cortex-M firmware (`sqtool bench`).

    stream.py     device-rate stream -> streaming resampler -> a model window every hop (WindowStream, replay)
    runtimes.py   one interface over PyTorch, Brevitas, onnxruntime, LiteRT, TFLite Micro, host C, MCU C
    mcu.py        build + run the generated C: host gcc, arm-none-eabi-gcc + QEMU (M4 / M33 / M55),
                  instruction counts (QEMU plugin, callgrind), flash / RAM / stack from the ELF
    mcu/          harness main, startup (fault handlers, markers, stack painting), board linker scripts,
                  the QEMU TCG plugin insn_count.c
    baseline.py   classic spectral HR with accelerometer artifact suppression + peak tracking
    tracker.py    causal slew-limited HR tracker
    report.py     metrics, tables, bench.json / bench.md / plots
    cli.py        `sqtool bench` (BenchConfig, run_bench); spectral exports go to spectral.py
    spectral.py   bench of spectral exports: one fixed-point front end, every runtime, HMM-decoded HR,
                  the whole C pipeline on the host (one push per recording) vs the Python integer reference
    predict.py    `sqtool predict`: per-window CSV, PNG and summary.json of recordings (C pipeline default)
    provenance.py what a model saw in training (seen-in-training rows, the synthetic-only warning)
    pipeline_fw.py  the exported pipeline as firmware (host / QEMU builds, instructions per stage)
"""
