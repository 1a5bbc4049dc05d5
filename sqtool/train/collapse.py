"""SimSiam collapse: the rule, and the one WARNING line that says so in pretraining and in a fine-tune from it.

A collapsed SimSiam encoder maps every window to nearly the same embedding: the validation embeddings'
per-dimension std (`loop.collapse_std`, ~1/sqrt(d) when healthy) falls under COLLAPSE_FRACTION of the healthy
value. `train pretrain` stores the verdict in metrics.json and in its model.pt (`metrics["collapsed"]`, with
`val_z_std`, `z_std_healthy`, `global_step`, `real_pairs`, `synthetic_pairs`, `pair_mode`), so a fine-tune that
starts from that checkpoint (`--init`) can say so too (`init_collapse_warning`).

Why it happens here, and what the line suggests: too few steps (eval-mode batch norm keeps statistics near
their initial values: 128 BIDMC pairs with synthetic partners, batch 32, gave val z std 0.0015 after 6 steps and
0.065 after 60), few or synthetic-only pairs, a learning rate too high for the batch (the loss drops to -1 at
once), and the (good, poor) pairs themselves (`--pair-mode augment` is the standard-SimSiam control).
"""
from __future__ import annotations

import math

COLLAPSE_FRACTION = 0.2          # collapsed: val z std < COLLAPSE_FRACTION x the healthy 1/sqrt(d)


def is_collapsed(z_std: float | None, d_proj: int) -> bool:
    """True when the validation embeddings' std is under COLLAPSE_FRACTION of the healthy 1/sqrt(d_proj)."""
    return z_std is not None and z_std < COLLAPSE_FRACTION / math.sqrt(d_proj)


def collapse_warning(m: dict, lr: float | None = None, what: str = "SimSiam") -> str | None:
    """The one 'WARNING: <what> collapsed ...' line for a pretraining whose metrics `m` (metrics.json, or model.pt's
    `metrics`) say collapsed, naming what it means and what to try (`lr`: the run's, named beside the advice);
    None when not collapsed (or not measured)."""
    if not m.get("collapsed"):
        return None
    tries = [f"more steps (this run trained {m['global_step']}: more pairs, more --epochs or a smaller --batch-size; "
             "too few also leave batch norm's statistics near their start)"] if m.get("global_step") else []
    if m.get("synthetic_pairs"):
        tries.append(f"real (good, poor) pairs (its corpus: {m.get('real_pairs', 0)} real, {m['synthetic_pairs']} with "
                     "a synthetic partner)")
    loss = f"; this run's last epoch: {m['final_loss']:.3f}" if m.get("final_loss") is not None else ""
    tries.append("a lower --lr" + (f" (it was {lr:g})" if lr is not None else "")
                 + f" when the loss fell to near -1 at once (the trivial solution{loss})")
    if m.get("pair_mode", "real") == "real":
        tries.append("--pair-mode augment")
    z, healthy = m.get("val_z_std"), m.get("z_std_healthy")
    measured = f"val z std {z:.4f} < {COLLAPSE_FRACTION:g} x the healthy ~{healthy:.3f}" \
        if z is not None and healthy else "val z std far under the healthy value"
    return (f"WARNING: {what} collapsed ({measured}): the encoder maps every window to nearly the same embedding, "
            "so a fine-tune from it starts with no useful features (no better than --init none); try "
            + (f"{', '.join(tries[:-1])} or {tries[-1]}" if len(tries) > 1 else tries[0]))


def init_collapse_warning(ck: dict | None) -> str | None:
    """For `train finetune --init CK`: the 'WARNING: ...' line when the pretraining checkpoint `ck` (as
    load_checkpoint returns it) records a collapsed SimSiam run, naming the checkpoint; None otherwise (no
    init, another kind, or a checkpoint from before the flag was stored)."""
    if not ck or ck.get("kind") != "teacher_pretrain":
        return None
    return collapse_warning(ck.get("metrics") or {}, (ck.get("train_cfg") or {}).get("lr"),
                            what=f"--init {ck.get('path', 'checkpoint')}: its SimSiam pretraining")
