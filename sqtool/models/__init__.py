"""Model registry: SiamQuality ResNet teachers and compact CNN students (float and Brevitas twins)."""
from sqtool.models.registry import (ModelCfg, Shipped, create_model, front_model, get_model_cfg, list_models,
                                    load_model, no_simsiam_reason, pretrains, register_model, shipped_as)

__all__ = ["ModelCfg", "Shipped", "create_model", "front_model", "get_model_cfg", "list_models", "load_model",
           "no_simsiam_reason", "pretrains", "register_model", "shipped_as"]
