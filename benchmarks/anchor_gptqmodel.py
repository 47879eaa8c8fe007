"""Runs INSIDE a separate venv that has GPTQModel (it needs torch>=2.14, which thinkcost does
not pin): quantize an HF model dir with GPTQModel on given calibration token windows, time it,
save the checkpoint. Called by benchmarks/quantize.py; prints one JSON line.

    GPTQMODEL_CPU_WORKERS=2 venv/bin/python benchmarks/anchor_gptqmodel.py MODEL_DIR CALIB.json OUT_DIR BITS GROUP
"""

import json
import os
import sys
import time

os.environ.setdefault("GPTQMODEL_CPU_WORKERS", "2")


def main() -> None:
    model_dir, calib_path, out_dir, bits, group = sys.argv[1:6]
    from gptqmodel import GPTQModel, QuantizeConfig

    with open(calib_path) as f:
        windows = json.load(f)
    data = [{"input_ids": w, "attention_mask": [1] * len(w)} for w in windows]
    cfg = QuantizeConfig(bits=int(bits), group_size=int(group), desc_act=False, sym=True, damp_percent=0.01)
    t = time.perf_counter()
    model = GPTQModel.load(model_dir, cfg, device="cpu")
    load_s = time.perf_counter() - t
    t, cpu = time.perf_counter(), time.process_time()  # CPU seconds: all threads, robust to a busy host
    model.quantize(data, batch_size=1)
    quant_s, quant_cpu_s = time.perf_counter() - t, time.process_time() - cpu
    model.save(out_dir)
    import gptqmodel

    out = {"load_s": load_s, "quantize_s": quant_s, "quantize_cpu_s": quant_cpu_s}
    print(json.dumps(out | {"version": gptqmodel.__version__}))


if __name__ == "__main__":
    main()
