"""Recovery of what quantization costs: quantization-aware distillation of a quantized variant
from its base model (`thinkcost recover`).

fakequant.py holds the student (straight-through fake quantization on the variant's own grid),
data.py the teacher traces and the train/eval overlap check, train.py the loop with resumable
checkpoints, export.py the GPTQ checkpoint that loads back as `ckpt:DIR`.
"""
