"""Reading Wan-family checkpoints from local files and loading them strictly into diffusers modules.

Self-Forcing (``self_forcing_dmd.pt``) keeps its generator under ``generator_ema`` (and ``generator``),
CausVid (``model.pt``) under ``generator``; both use the original Wan parameter names behind a
``model.`` prefix (``model.blocks.0.self_attn.q.weight``). Those names are converted to diffusers'
(``blocks.0.attn1.to_q.weight``) with the mapping that diffusers ships for Wan single-file loading.
"""

from __future__ import annotations

import contextlib
import inspect
import json
from collections.abc import Mapping
from pathlib import Path

import torch
from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers
from safetensors.torch import load_file

from .causal_wan import CausalWanTransformer3DModel
from .random_model import cast_keeping_fp32

SHOWN = 5  # how many names an error message lists per kind of mismatch


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype):
    """Create parameters directly in ``dtype`` (a 5.7 B-parameter encoder never exists in float32)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


class CheckpointMismatch(ValueError):
    """A state dict that does not fit the module it is loaded into."""


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file, or the (possibly nested) dict saved in a ``.pt``/``.pth`` file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file {path} does not exist")
    if path.suffix == ".safetensors":
        return load_file(path)
    try:  # memory-mapped: a 11 GB text encoder file is not copied into memory first
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as error:
        if "mmap" not in str(error):
            raise
        return torch.load(path, map_location="cpu", weights_only=True)  # the legacy (non-zip) format


def read_folder_weights(folder: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of a diffusers-layout model folder: one ``*.safetensors`` file or the shards its index names."""
    folder = Path(folder)
    indexes = sorted(folder.glob("*.safetensors.index.json"))
    if indexes:
        shards = sorted(set(json.loads(indexes[0].read_text())["weight_map"].values()))
        files = [folder / name for name in shards]
    else:
        files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no .safetensors weights in {folder}")
    state: dict[str, torch.Tensor] = {}
    for file in files:
        state.update(read_state_dict(file))
    return state


def generator_weights(
    checkpoint: Mapping, key: str, path: str | Path = "checkpoint"
) -> dict[str, torch.Tensor]:
    """The generator's state dict stored under ``key`` (``generator_ema`` or ``generator``)."""
    if key not in checkpoint:
        found = ", ".join(sorted(str(k) for k in checkpoint)[:SHOWN]) or "nothing"
        raise CheckpointMismatch(f"{path} has no {key!r} entry (top-level entries: {found})")
    weights = checkpoint[key]
    if not isinstance(weights, Mapping) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise CheckpointMismatch(f"{path}: {key!r} is not a state dict of tensors")
    return dict(weights)


def strip_prefix(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """Drop ``prefix`` from every key when all keys carry it (the generator wrapper's ``model.``)."""
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix) :]: v for k, v in state.items()}
    return dict(state)


def wan_transformer_to_diffusers(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Original Wan transformer names (with or without the ``model.`` prefix) to diffusers names."""
    return convert_wan_transformer_to_diffusers(strip_prefix(state, "model."))


def _listing(names: list[str]) -> str:
    more = f", ... ({len(names)} in all)" if len(names) > SHOWN else ""
    return ", ".join(names[:SHOWN]) + more


def check_state_dict(module: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Raise one :class:`CheckpointMismatch` naming missing keys, unexpected keys and wrong shapes."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(
        f"{k} (checkpoint {tuple(state[k].shape)}, model {tuple(expected[k].shape)})"
        for k in set(expected) & set(state)
        if state[k].shape != expected[k].shape
    )
    problems = [
        f"{len(items)} {what}: {_listing(items)}"
        for what, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("wrong shapes", wrong),
        )
        if items
    ]
    if problems:
        raise CheckpointMismatch(
            f"{source} does not fit {type(module).__name__}:\n  " + "\n  ".join(problems)
        )


def load_strict(module: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str) -> torch.nn.Module:
    """Check ``state`` against ``module`` (see :func:`check_state_dict`), then copy it in (dtypes kept)."""
    check_state_dict(module, state, source)
    module.load_state_dict(state, strict=True)
    return module


def transformer_config(config: Mapping) -> dict:
    """Constructor arguments of :class:`CausalWanTransformer3DModel` from either config layout.

    The diffusers layout (``transformer/config.json``) already names them; the original release's
    ``config.json`` (``dim``, ``num_heads``, ``in_dim``, ...) is translated.
    """
    if "num_attention_heads" in config:
        names = inspect.signature(CausalWanTransformer3DModel.__init__).parameters
        return {k: v for k, v in config.items() if k in names and k != "self"}
    required = {"dim", "num_heads", "num_layers", "ffn_dim", "in_dim", "out_dim"}
    missing = required - set(config)
    if missing:
        raise ValueError(f"Wan config lacks {', '.join(sorted(missing))} (have {', '.join(sorted(config))})")
    if config.get("model_type", "t2v") != "t2v":
        raise ValueError(
            f"only text-to-video Wan models stream here, got model_type {config['model_type']!r}"
        )
    return dict(
        patch_size=tuple(config.get("patch_size", (1, 2, 2))),
        num_attention_heads=config["num_heads"],
        attention_head_dim=config["dim"] // config["num_heads"],
        in_channels=config["in_dim"],
        out_channels=config["out_dim"],
        text_dim=config.get("text_dim", 4096),
        freq_dim=config.get("freq_dim", 256),
        ffn_dim=config["ffn_dim"],
        num_layers=config["num_layers"],
        cross_attn_norm=config.get("cross_attn_norm", True),
        qk_norm="rms_norm_across_heads" if config.get("qk_norm", True) else None,
        eps=config.get("eps", 1e-6),
    )


def read_config(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    return json.loads(path.read_text())


def load_generator(
    checkpoint_path: str | Path,
    config: Mapping,
    key: str,
    dtype: torch.dtype = torch.float32,
) -> CausalWanTransformer3DModel:
    """A causal transformer of ``config`` holding the generator stored under ``key`` in ``checkpoint_path``."""
    checkpoint = read_state_dict(checkpoint_path)
    state = wan_transformer_to_diffusers(generator_weights(checkpoint, key, checkpoint_path))
    model = CausalWanTransformer3DModel(**transformer_config(config))
    load_strict(model, state, f"{Path(checkpoint_path).name}[{key!r}]")
    return cast_keeping_fp32(model, dtype)
