"""Safe checkpoint loading: fairseq's loads run under torch's ``weights_only`` unpickler with a fairseq allow-list.

torch ≥ 2.6 loads with ``weights_only=True``, which refuses the few Python objects fairseq checkpoints carry besides
tensors (``argparse.Namespace`` in ``args``, omegaconf containers in older ``cfg``, numpy scalars in the training
state), so stock ``fairseq-generate`` fails on them. We keep ``weights_only`` on and allow exactly those types with
torch's own mechanism, ``torch.serialization.safe_globals``, entered around each load and only for fairseq's loads:
fairseq's ``checkpoint_utils`` sees a ``torch`` whose ``load`` is :func:`safe_torch_load` (every other attribute is
torch's), so no other caller of ``torch.load`` gets the allow-list. Why not just wrap fairseq's loader in
``safe_globals`` and rely on torch's default: the default can be switched off from outside
(``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``), an explicit ``weights_only=True`` cannot; and a refused or truncated file
should be one line naming it (:class:`CheckpointError`), not a traceback. The caller's keyword arguments
(``map_location``, ``mmap``, …) are passed on; ``weights_only=False`` is refused, never honoured.
"""

import argparse
import collections
import pickle
import types
import typing
import zipfile

import numpy as np
import torch

from .errors import OneLineError

DEFECT = (
    "fairseq's checkpoint_utils calls torch.load without an allow-list: torch>=2.6 refuses fairseq's own checkpoints"
)
UPSTREAM = "fairseq/checkpoint_utils.py load_checkpoint_to_cpu: torch.load(f, map_location=cpu)"
CHECKED_AGAINST = "0.12.3.1"


class CheckpointError(OneLineError):
    """A checkpoint that cannot or must not be loaded; the message names the file and the problem."""


def _numpy_globals():
    """numpy scalars and dtypes, under both the numpy 2 names and the numpy 1 names old checkpoints use."""
    multiarray = getattr(np, "_core", None) or np.core
    allowed = [np.dtype, (multiarray.multiarray.scalar, "numpy.core.multiarray.scalar"), multiarray.multiarray.scalar]
    for name in ("float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint8", "bool_"):
        allowed.append(type(np.dtype(getattr(np, name))))
    return allowed


def _omegaconf_globals():
    from omegaconf import DictConfig, ListConfig, nodes
    from omegaconf.base import ContainerMetadata, Metadata

    return [
        DictConfig,
        ListConfig,
        ContainerMetadata,
        Metadata,
        nodes.AnyNode,
        nodes.StringNode,
        nodes.IntegerNode,
        nodes.FloatNode,
        nodes.BooleanNode,
    ]


def allowed_globals() -> list:
    """Exactly the non-tensor types found in fairseq checkpoints."""
    return (
        [
            argparse.Namespace,
            collections.defaultdict,
            collections.OrderedDict,
            typing.Any,
            dict,
            list,
            int,
            float,
            str,
            bool,
        ]
        + _numpy_globals()
        + _omegaconf_globals()
    )


def _name(f) -> str:
    return str(f) if isinstance(f, (str, bytes)) or hasattr(f, "__fspath__") else getattr(f, "name", "<checkpoint>")


def safe_torch_load(f, map_location="cpu", **kwargs):
    """``torch.load(f, weights_only=True, …)`` with fairseq's types allowed; a :class:`CheckpointError` otherwise.

    ``f`` is a path or an open binary file; other keyword arguments go to ``torch.load`` unchanged.
    """
    name = _name(f)
    if kwargs.pop("weights_only", True) is not True:
        raise CheckpointError(f"{name}: refused to load with weights_only=False (fairseq-vanilla keeps it on)")
    try:
        with torch.serialization.safe_globals(allowed_globals()):
            return _torch_load(f, map_location=map_location, weights_only=True, **kwargs)
    except FileNotFoundError as e:
        raise CheckpointError(f"{name}: no such checkpoint file") from e
    except pickle.UnpicklingError as e:
        lines = str(e).splitlines()
        detail = next(
            (ln.strip() for ln in lines if "GLOBAL" in ln or "Unsupported global" in ln),
            "weights_only unpickler refused it",
        )
        raise CheckpointError(
            f"{name}: refused to load: it holds something other than tensors and the types fairseq "
            f"checkpoints use ({detail}); nothing in it was run"
        ) from e
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"{name}: not a readable checkpoint (truncated or corrupt?): {first}") from e


_torch_load = torch.load  # the real loader, kept before anything can wrap it


class TorchWithSafeLoad(types.ModuleType):
    """What fairseq's ``checkpoint_utils`` sees as ``torch``: torch itself, except that ``load`` is safe."""

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def load(f, map_location=None, **kwargs):
        return safe_torch_load(f, map_location=map_location, **kwargs)


def install() -> None:
    """Make fairseq's checkpoint loading go through :func:`safe_torch_load` (idempotent)."""
    from fairseq import checkpoint_utils

    if not isinstance(checkpoint_utils.torch, TorchWithSafeLoad):
        checkpoint_utils.torch = TorchWithSafeLoad("torch")
