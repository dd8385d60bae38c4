"""lrate = scale · d_model^-0.5 · min(step^-0.5, step · warmup_steps^-1.5) (§5.3), as fairseq LR scheduler ``noam``."""

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import List

from fairseq.dataclass import FairseqDataclass
from fairseq.optim.lr_scheduler import FairseqLRScheduler, register_lr_scheduler
from omegaconf import II

from ..fairseq_fixes.errors import FlagError


def noam_lr(step: int, d_model: int, warmup: int, scale: float = 1.0) -> float:
    """scale · d_model^-0.5 · min(step^-0.5, step · warmup^-1.5) (§5.3); step counts from 1."""
    step = max(step, 1)
    return scale * d_model**-0.5 * min(step**-0.5, step * warmup**-1.5)


@dataclass
class NoamConfig(FairseqDataclass):
    warmup_updates: int = field(default=4000, metadata={"help": "warmup_steps of §5.3 (the paper: 4000)"})
    lr: List[float] = II("optimization.lr")
    d_model: int = II("model.encoder_embed_dim")


@register_lr_scheduler("noam", dataclass=NoamConfig)
class NoamSchedule(FairseqLRScheduler):
    """§5.3's schedule. ``--lr`` is the scale factor (1 = the paper); d_model is the model's ``--encoder-embed-dim``.

    fairseq calls ``step_update(n)`` with n updates done, so update n+1 runs at the paper's step_num = n+1.
    """

    def __init__(self, cfg: NoamConfig, optimizer):
        super().__init__(cfg, optimizer)
        if isinstance(cfg.lr, Collection) and len(cfg.lr) > 1:
            raise FlagError("--lr-scheduler noam takes a single --lr (the scale factor)")
        if cfg.warmup_updates < 1:
            raise FlagError(f"--warmup-updates must be at least 1 for noam, got {cfg.warmup_updates}")
        self.scale = cfg.lr[0] if isinstance(cfg.lr, Collection) else cfg.lr
        self.step_update(0)

    def step(self, epoch, val_loss=None):
        super().step(epoch, val_loss)
        return self.optimizer.get_lr()

    def step_update(self, num_updates: int) -> float:
        lr = noam_lr(num_updates + 1, self.cfg.d_model, self.cfg.warmup_updates, self.scale)
        self.optimizer.set_lr(lr)
        return lr
