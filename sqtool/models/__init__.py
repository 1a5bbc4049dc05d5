"""Model registry: SiamQuality ResNet teachers and compact CNN students (float and Brevitas twins)."""
from sqtool.models.registry import (ModelCfg, create_model, front_export_targets, get_model_cfg, list_models,
                                    load_model, no_simsiam_reason, pretrains, register_model)

__all__ = ["ModelCfg", "create_model", "front_export_targets", "get_model_cfg", "list_models", "load_model",
           "no_simsiam_reason", "pretrains", "register_model"]
