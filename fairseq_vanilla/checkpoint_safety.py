"""Safe checkpoint loading: fairseq's loader runs under torch's ``weights_only`` unpickler with an allow-list.

torch ≥ 2.6 loads with ``weights_only=True``, which refuses the few Python objects that fairseq
checkpoints carry besides tensors (``argparse.Namespace`` in ``args``, omegaconf containers in older
``cfg``, numpy scalars in the training state), so stock ``fairseq-generate`` fails on them. We keep
``weights_only`` on and allow exactly those types, only while fairseq's ``load_checkpoint_to_cpu`` runs.
Anything else in a checkpoint (a pickled function call, say) is refused before it can run, with one
error line that names the file.
"""
import argparse
import collections
import pickle
import sys
import types
import typing
import zipfile

import numpy as np
import torch

from .no_sentence_lost import ExampleTooLongError


class CheckpointError(RuntimeError):
    """A checkpoint that cannot or must not be loaded; the message names the file and the problem."""


def _numpy_globals():
    """numpy scalars and dtypes, under both the numpy 2 names and the numpy 1 names old checkpoints use."""
    multiarray = getattr(np, "_core", None) or np.core
    allowed = [np.dtype, (multiarray.multiarray.scalar, "numpy.core.multiarray.scalar"),
               multiarray.multiarray.scalar]
    for name in ("float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint8", "bool_"):
        allowed.append(type(np.dtype(getattr(np, name))))
    return allowed


def _omegaconf_globals():
    from omegaconf import DictConfig, ListConfig, nodes
    from omegaconf.base import ContainerMetadata, Metadata

    return [DictConfig, ListConfig, ContainerMetadata, Metadata, nodes.AnyNode, nodes.StringNode,
            nodes.IntegerNode, nodes.FloatNode, nodes.BooleanNode]


def allowed_globals() -> list:
    """Exactly the non-tensor types found in fairseq checkpoints."""
    return ([argparse.Namespace, collections.defaultdict, collections.OrderedDict, typing.Any, dict, list, int,
             float, str, bool] + _numpy_globals() + _omegaconf_globals())


def safe_torch_load(f, map_location="cpu"):
    """``torch.load(f, weights_only=True)`` with fairseq's types allowed; a :class:`CheckpointError` otherwise.

    ``f`` is a path or an open binary file. ``weights_only`` is passed explicitly, so no environment
    variable (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``) can turn it off here.
    """
    name = f if isinstance(f, (str, bytes)) or hasattr(f, "__fspath__") else getattr(f, "name", "<checkpoint>")
    try:
        with torch.serialization.safe_globals(allowed_globals()):
            return _torch_load(f, map_location=map_location, weights_only=True)
    except FileNotFoundError as e:
        raise CheckpointError(f"{name}: no such checkpoint file") from e
    except pickle.UnpicklingError as e:
        lines = str(e).splitlines()
        detail = next((ln.strip() for ln in lines if "GLOBAL" in ln or "Unsupported global" in ln),
                      "weights_only unpickler refused it")
        raise CheckpointError(
            f"{name}: refused to load: it holds something other than tensors and the types fairseq "
            f"checkpoints use ({detail}); nothing in it was run"
        ) from e
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"{name}: not a readable checkpoint (truncated or corrupt?): {first}") from e


_torch_load = torch.load  # the real loader, kept before anything can wrap it


class _TorchWithSafeLoad(types.ModuleType):
    """What fairseq's ``checkpoint_utils`` sees as ``torch``: torch itself, except that ``load`` is safe."""

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def load(f, map_location=None, **unused):
        return safe_torch_load(f, map_location=map_location)


def install() -> None:
    """Make fairseq's checkpoint loading go through :func:`safe_torch_load` (idempotent)."""
    from fairseq import checkpoint_utils

    if not isinstance(checkpoint_utils.torch, _TorchWithSafeLoad):
        checkpoint_utils.torch = _TorchWithSafeLoad("torch")
    _install_excepthook()


def _install_excepthook() -> None:
    """Print a CheckpointError from a fairseq command as one line, not a traceback."""
    previous = sys.excepthook
    if getattr(previous, "_fairseq_vanilla", False):
        return

    def hook(exc_type, exc, tb):
        if issubclass(exc_type, (CheckpointError, ExampleTooLongError)):
            print(f"error: {exc}", file=sys.stderr)
        elif str(exc).startswith("Cannot load model parameters from checkpoint "):
            # fairseq's trainer: the checkpoint's parameters do not fit the model built from the flags
            path = str(exc)[len("Cannot load model parameters from checkpoint "):].split(";")[0]
            cause = " ".join(str(exc.__cause__ or exc.__context__ or "").split())
            print(f"error: {path}: a checkpoint of another architecture or size than --arch and the size flags "
                  f"build ({cause[:300]}{'…' if len(cause) > 300 else ''})", file=sys.stderr)
        else:
            previous(exc_type, exc, tb)

    hook._fairseq_vanilla = True
    sys.excepthook = hook
