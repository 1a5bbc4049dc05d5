"""The ground floor: errors, atomic IO and hashing, typed configs, run directories, the model contract.

It imports no stage; every stage may import it."""
from sqtool.core.config import (BoolFlag, absolute_path, absolute_paths, add_bool_flag, add_config_args,
                                add_deprecated_alias, from_dict, help_formatter, option_help, resolve_config,
                                resume_config, same_path, to_dict)
from sqtool.core.errors import NoSignal, SqtoolError
from sqtool.core.model_cfg import (BAND_PHASES, DEFAULT_BAND, FS_MAX_HZ, MIN_RECORD_SAMPLES, WINDOW_S_MAX, ModelCfg, check_fs,
                                   check_band_phase, check_window_s, signal_channels, stream_filter)
from sqtool.core.io import (atomic_save_npz, atomic_savefig, atomic_write_bytes, atomic_write_text, json_default,
                            load_shared_lib, sha256_file, sha256_file_cached, write_metrics)
from sqtool.core.runs import (DATA_ROOT_HELP, PROJECT_ROOT, check_run_name, data_root_or_exit, git_sha, held_run_dirs,
                               lock_run_dir, make_run_dir, release_run_dirs, releases_run_dirs, resolve_data_root,
                               save_config, set_seed)

__all__ = ["SqtoolError", "NoSignal", "ModelCfg", "signal_channels", "stream_filter", "check_band_phase", "BAND_PHASES", "DEFAULT_BAND", "FS_MAX_HZ", "WINDOW_S_MAX", "MIN_RECORD_SAMPLES", "check_fs",
           "check_window_s", "BoolFlag", "add_bool_flag", "add_deprecated_alias", "help_formatter",
           "option_help", "add_config_args", "from_dict", "resolve_config", "resume_config", "absolute_path",
           "absolute_paths", "same_path", "to_dict", "atomic_save_npz", "atomic_savefig", "atomic_write_bytes",
           "atomic_write_text", "json_default", "load_shared_lib", "sha256_file", "sha256_file_cached", "write_metrics", "PROJECT_ROOT", "git_sha",
           "make_run_dir", "check_run_name", "held_run_dirs", "lock_run_dir", "release_run_dirs", "releases_run_dirs", "resolve_data_root",
           "data_root_or_exit", "DATA_ROOT_HELP", "save_config", "set_seed"]
