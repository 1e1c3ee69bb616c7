"""The paper's loss terms on hand-computable inputs, and with the paper critic."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ssgan_core import AudioSpec, ConfigError, Critic, LossContext, LossOptions, LossTerm
from ssgan_core.plugins import registry
from ssgan_plugins.paper.critic import PaperCritic
from ssgan_plugins.paper.losses import (
    LOSS_TERMS,
    FeatureMatching,
    GradientPenalty,
    SpectralConvergence,
    SpectralDifference,
    Wasserstein,
)


class LinearCritic(Critic):
    """``D(x) = <w, x>`` for any image shape; features ``double`` = 2x and ``total`` = sum."""

    feature_layers = ("double", "total")

    def __init__(self, shape: tuple[int, ...], norm: float = 1.0) -> None:
        super().__init__()
        w = torch.randn(shape, generator=torch.Generator().manual_seed(0))
        self.w = nn.Parameter(w * (norm / w.norm()))

    def forward_features(self, image):
        features = {"double": 2 * image, "total": image.flatten(1).sum(dim=1, keepdim=True)}
        return (image * self.w).flatten(1).sum(dim=1), features


class MeanCritic(Critic):
    """``D(x) = mean(x)`` per item, no features."""

    def forward_features(self, image):
        return image.flatten(1).mean(dim=1), {}


def test_loss_terms_table_names_defaults_and_factories():
    assert [entry[0] for entry in LOSS_TERMS] == [
        "wasserstein",
        "gradient-penalty",
        "spectral-difference",
        "spectral-convergence",
        "feature-matching",
    ]
    defaults = {name: options().weight for name, _, options, _ in LOSS_TERMS}
    assert defaults == {
        "wasserstein": 1.0,
        "gradient-penalty": 5.0,
        "spectral-difference": 0.15,
        "spectral-convergence": 0.15,
        "feature-matching": 0.35,
    }
    for _, factory, options, description in LOSS_TERMS:
        assert issubclass(options, LossOptions) and description
        term = factory(options(weight=2.5), AudioSpec())
        assert isinstance(term, LossTerm) and term.weight == 2.5
    assert registry("loss").create("gradient-penalty", {}, AudioSpec()).weight == 5.0


def test_wasserstein_both_sides():
    real = torch.full((3, 2, 4, 4), 2.0)
    fake = torch.full((3, 2, 4, 4), 0.5)
    ctx = LossContext(real, fake, MeanCritic())
    term = Wasserstein()
    assert term.critic_loss(ctx).item() == pytest.approx(0.5 - 2.0)
    assert term.generator_loss(ctx).item() == pytest.approx(-0.5)


class BatchNormCritic(Critic):
    """Batch-normalises its input over the batch, then scores the mean; counts its calls."""

    feature_layers = ("normed",)

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(1, affine=False)
        self.calls = 0

    def forward_features(self, image):
        self.calls += 1
        normed = self.norm(image.flatten(1).mean(dim=1, keepdim=True))
        return normed[:, 0], {"normed": normed}


def test_joint_context_scores_real_and_fake_in_one_call_with_shared_statistics():
    real, fake = torch.full((4, 2, 3, 3), 1.0), torch.full((4, 2, 3, 3), -1.0)
    real[0] += 0.1  # some spread, so the separate calls do not divide by zero
    fake[0] -= 0.1
    critic = BatchNormCritic()
    separate = LossContext(real, fake, critic)
    # Normalised on its own, a constant offset of the whole fake batch vanishes.
    assert separate.real_scores.mean().item() == pytest.approx(separate.fake_scores.mean().item(), abs=1e-5)
    assert critic.calls == 2
    critic.calls = 0
    joint = LossContext(real, fake, critic, joint=True)
    assert joint.real_scores.shape == joint.fake_scores.shape == (4,)
    assert joint.real_scores.mean().item() > 0.9 and joint.fake_scores.mean().item() < -0.9
    assert joint.fake_features["normed"].shape == (4, 1) and critic.calls == 1
    assert Wasserstein().critic_loss(joint).item() < -1.8


@pytest.mark.parametrize("shape", [(1, 2, 256, 256), (3, 1, 5, 7), (5, 3)])
def test_gradient_penalty_is_zero_for_unit_norm_linear_critic(shape):
    critic = LinearCritic(shape[1:], norm=1.0)
    ctx = LossContext(torch.randn(shape), torch.randn(shape), critic)
    assert GradientPenalty().critic_loss(ctx).item() == pytest.approx(0.0, abs=1e-8)


def test_gradient_penalty_value_and_gradient_for_scaled_linear_critic():
    critic = LinearCritic((2, 3, 5), norm=3.0)
    ctx = LossContext(torch.randn(4, 2, 3, 5), torch.randn(4, 2, 3, 5), critic)
    penalty = GradientPenalty().critic_loss(ctx)
    assert penalty.item() == pytest.approx(4.0, rel=1e-6)  # (3 - 1)^2
    penalty.backward()  # needs the create_graph path: d/dw (|w| - 1)^2 = 2 (|w| - 1) w / |w|
    torch.testing.assert_close(critic.w.grad, 2 * 2 * critic.w.detach() / 3)


def test_gradient_penalty_uses_common_items_when_batches_differ_and_leaves_inputs_alone():
    critic = LinearCritic((2, 4), norm=2.0)
    real, fake = torch.randn(3, 2, 4), torch.randn(2, 2, 4, requires_grad=True)
    penalty = GradientPenalty().critic_loss(LossContext(real, fake, critic))
    assert penalty.item() == pytest.approx(1.0, rel=1e-6)
    assert real.grad is None and fake.grad is None


def test_gradient_penalty_through_the_paper_critic_batch_of_one():
    critic = PaperCritic().train()
    real, fake = torch.rand(1, 2, 256, 256), torch.rand(1, 2, 256, 256)
    penalty = GradientPenalty().critic_loss(LossContext(real, fake, critic))
    assert penalty.ndim == 0 and torch.isfinite(penalty)
    penalty.backward()
    assert critic.block1[0].parametrizations.weight.original.grad.abs().sum() > 0


def test_gradient_penalty_is_random_per_item_and_seeded():
    critic = LinearCritic((3,), norm=1.0)
    real, fake = torch.zeros(6, 3), torch.ones(6, 3)
    mixes = []
    for _ in range(2):
        torch.manual_seed(7)
        seen = {}
        original = critic.forward_features

        def spy(image, original=original, seen=seen):
            seen["x"] = image.detach().clone()
            return original(image)

        critic.forward_features = spy
        GradientPenalty().critic_loss(LossContext(real, fake, critic))
        critic.forward_features = original
        mixes.append(seen["x"])
    torch.testing.assert_close(mixes[0], mixes[1])
    x = mixes[0]
    assert torch.allclose(x, x[:, :1].expand_as(x))  # one epsilon per item
    assert x[:, 0].unique().numel() == 6


def test_spectral_difference_and_convergence_values_and_no_critic_gradient():
    real = torch.full((1, 1, 2, 2), 3.0)  # ||real|| = 6
    fake = real.clone()
    fake[0, 0, 1, 1] = 7.0  # fake - real = [0, 0, 0, 4]
    critic = LinearCritic((1, 2, 2))
    ctx = LossContext(real, fake, critic)
    difference = SpectralDifference().critic_loss(ctx)
    convergence = SpectralConvergence().critic_loss(ctx)
    assert difference.item() == pytest.approx(1.0)
    assert convergence.item() == pytest.approx(4 / 6)
    assert not difference.requires_grad and not convergence.requires_grad
    assert SpectralDifference().generator_loss(ctx) is None
    assert SpectralConvergence().generator_loss(ctx) is None


def test_spectral_convergence_is_finite_for_silent_real():
    ctx = LossContext(torch.zeros(2, 2, 4, 4), torch.ones(2, 2, 4, 4), MeanCritic())
    assert math.isfinite(SpectralConvergence().critic_loss(ctx).item())


def test_feature_matching_compares_items_per_layer_by_default():
    critic = LinearCritic((1, 2))
    real = torch.tensor([[[1.0, 5.0]], [[3.0, 1.0]]])
    fake = torch.tensor([[[0.0, 1.0]], [[0.0, 1.0]]], requires_grad=True)
    ctx = LossContext(real, fake, critic)
    value = FeatureMatching().generator_loss(ctx)
    # double: 2 * mean(|1-0|, |5-1|, |3-0|, |1-1|) = 4; total: mean(|6-1|, |4-1|) = 4
    assert value.item() == pytest.approx(4.0)
    value.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert FeatureMatching().critic_loss(ctx) is None


def test_feature_matching_batch_means_ignores_item_order():
    critic = LinearCritic((1, 2))
    real = torch.tensor([[[1.0, 5.0]], [[3.0, 1.0]]])  # batch mean [2, 3]
    fake = torch.tensor([[[0.0, 1.0]], [[0.0, 1.0]]])  # batch mean [0, 1]
    term = FeatureMatching(compare="batch-means")
    # double: mean |2*[2,3] - 2*[0,1]| = 4; total: |5 - 1| = 4
    assert term.generator_loss(LossContext(real, fake, critic)).item() == pytest.approx(4.0)
    assert term.generator_loss(LossContext(real.flip(0), fake, critic)).item() == pytest.approx(4.0)
    # comparing items does see the order: fake item 0 equals real item 0
    fake = torch.tensor([[[1.0, 5.0]], [[0.0, 0.0]]])
    items = FeatureMatching()
    assert items.generator_loss(LossContext(real, fake, critic)).item() == pytest.approx(2.0)
    assert items.generator_loss(LossContext(real.flip(0), fake, critic)).item() == pytest.approx(5.0)


def test_feature_matching_rejects_an_unknown_comparison():
    with pytest.raises(ConfigError, match="batch-means"):
        FeatureMatching(compare="batch_means")  # type: ignore[arg-type]


def test_feature_matching_pairs_the_first_items_of_unequal_batches():
    critic = LinearCritic((1, 2))
    real = torch.tensor([[[1.0, 5.0]], [[3.0, 1.0]], [[9.0, 9.0]]])
    fake = torch.tensor([[[0.0, 1.0]], [[0.0, 1.0]]])
    assert FeatureMatching().generator_loss(LossContext(real, fake, critic)).item() == pytest.approx(4.0)


def test_feature_matching_uses_the_paper_critics_attention_and_block5():
    torch.manual_seed(0)
    critic = PaperCritic().eval()
    with torch.no_grad():
        critic.attention.gamma.fill_(1.0)
    taken = {}
    for name in ("attention", "block5"):
        getattr(critic, name).register_forward_hook(
            lambda m, i, o, name=name: taken.setdefault(name, []).append(o.detach())
        )
    real, fake = torch.rand(2, 2, 256, 256), torch.rand(2, 2, 256, 256)
    value = FeatureMatching().generator_loss(LossContext(real, fake, critic))
    (fake_att, real_att), (fake_b5, real_b5) = taken["attention"], taken["block5"]
    expected = ((real_att - fake_att).abs().mean() + (real_b5 - fake_b5).abs().mean()) / 2
    torch.testing.assert_close(value.detach(), expected)


def test_feature_matching_without_features_is_a_config_error():
    ctx = LossContext(torch.zeros(2, 3), torch.zeros(2, 3), MeanCritic())
    with pytest.raises(ConfigError, match="feature-matching"):
        FeatureMatching().generator_loss(ctx)
