"""sqtool: SiamQuality PPG foundation model, from pretraining to a Cortex-M wrist device."""
__version__ = "0.1.0"
