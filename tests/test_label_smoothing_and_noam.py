"""Label-smoothed loss against a table worked out by hand; §5.3's learning rate at chosen steps."""

import math

import pytest
import torch

from fairseq_vanilla.criterions import label_smoothed_nll_loss
from fairseq_vanilla.lr_scheduler import noam_lr

# V = 4, p = (1/2, 1/4, 1/8, 1/8). Per token: nll = -ln p_y; smooth = Σ_v -ln p_v = ln2 + ln4 + 2 ln8 = 9 ln2;
# loss = (1-ε)·nll + (ε/V)·smooth.
P = torch.tensor([0.5, 0.25, 0.125, 0.125]).log()
LN2 = math.log(2)
HAND = [
    # (target, ε, loss, nll)
    (0, 0.0, LN2, LN2),  # 0.693147
    (0, 0.1, 0.9 * LN2 + 0.025 * 9 * LN2, LN2),  # 0.779791
    (2, 0.1, 0.9 * 3 * LN2 + 0.025 * 9 * LN2, 3 * LN2),  # 2.027955
    (1, 0.2, 0.8 * 2 * LN2 + 0.05 * 9 * LN2, 2 * LN2),  # 1.420953
]


@pytest.mark.parametrize("target,eps,loss,nll", HAND)
def test_single_token_table(target, eps, loss, nll):
    got_loss, got_nll = label_smoothed_nll_loss(P[None], torch.tensor([target]), eps)
    assert float(got_loss) == pytest.approx(loss, abs=1e-5)
    assert float(got_nll) == pytest.approx(nll, abs=1e-5)


def test_padding_is_ignored_and_tokens_sum():
    lprobs = P.expand(3, 4)
    loss, nll = label_smoothed_nll_loss(lprobs, torch.tensor([0, 3, 2]), 0.1, ignore_index=3)
    assert float(nll) == pytest.approx(LN2 + 3 * LN2, abs=1e-5)  # the padding target (3) counts 0
    assert float(loss) == pytest.approx((0.9 * LN2 + 0.225 * LN2) + (0.9 * 3 * LN2 + 0.225 * LN2), abs=1e-5)


def test_uniform_prediction_has_loss_ln_V_whatever_epsilon():
    lprobs = torch.full((1, 8), -math.log(8))
    for eps in (0.0, 0.1, 0.5):
        loss, _ = label_smoothed_nll_loss(lprobs, torch.tensor([5]), eps)
        assert float(loss) == pytest.approx(math.log(8), abs=1e-6)


@pytest.mark.parametrize(
    "step,expected",
    [
        (1, 512**-0.5 * 4000**-1.5),  # 1.7469e-07
        (2000, 512**-0.5 * 2000 * 4000**-1.5),
        (4000, 512**-0.5 * 4000**-0.5),  # peak 6.9877e-04
        (16000, 512**-0.5 * 16000**-0.5),  # 3.4939e-04
    ],
)
def test_noam_values(step, expected):
    assert noam_lr(step, 512, 4000) == pytest.approx(expected, rel=1e-12)
    assert noam_lr(4000, 512, 4000) == pytest.approx(6.98771e-04, rel=1e-5)


def test_noam_scheduler_drives_fairseq_optimizer():
    """fairseq's scheduler object: after n updates the optimizer runs at step n+1, scaled by --lr."""
    from fairseq.optim import FairseqOptimizer
    from omegaconf import OmegaConf

    from fairseq_vanilla.lr_scheduler.noam import NoamSchedule

    class SGD(FairseqOptimizer):
        def __init__(self):
            super().__init__(None)
            self._optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.0)

    cfg = OmegaConf.create({"warmup_updates": 10, "lr": [2.0], "d_model": 64, "_name": "noam"})
    opt = SGD()
    sched = NoamSchedule(cfg, opt)
    assert opt.get_lr() == pytest.approx(2.0 * 64**-0.5 * 1 * 10**-1.5)
    sched.step_update(9)
    assert opt.get_lr() == pytest.approx(2.0 * 64**-0.5 * 10**-0.5)
    sched.step_update(39)
    assert opt.get_lr() == pytest.approx(2.0 * 64**-0.5 * 40**-0.5)
