"""Paper generator, critic and attention: parameter counts, shapes, features, exact fast attention."""

from __future__ import annotations

import pytest
import torch

from ssgan_core import AudioSpec, Critic, Generator, InputError
from ssgan_core.plugins import registry
from ssgan_plugins.paper.attention import (
    NORMALIZE_EPS,
    SelfAttention2d,
    kernel_linear_attention,
    relu_attention,
    relu_attention_naive,
    relu_attention_sorted,
)
from ssgan_plugins.paper.critic import PaperCritic, PaperCriticOptions, count_parameters
from ssgan_plugins.paper.generator import PaperGenerator, PaperGeneratorOptions
from ssgan_plugins.paper.layers import Dropout, FewChannelConv2d, SubPixelConvTranspose2d


def reference_relu_attention(q, k, v):
    """The paper rule written from its definition, independently of the module."""
    scores = torch.einsum("bdi,bdj->bij", k, q).clamp(min=0)  # key i, query j
    weights = scores / scores.sum(dim=1, keepdim=True).clamp_min(1e-12)
    return torch.einsum("bci,bij->bcj", v, weights)


def penalty_of(fn, q, k, v):
    """A gradient penalty through ``fn``: first-order grads with a graph, then a scalar of them."""
    out = fn(q, k, v)
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    grads = torch.autograd.grad((out * weights).sum(), (q, k, v), create_graph=True)
    return sum((g.flatten(1).norm(dim=1) - 1).pow(2).mean() for g in grads)


def qkv(batch, dims, channels, tokens, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [
        torch.randn(batch, c, tokens, generator=gen, dtype=dtype).requires_grad_(True)
        for c in (dims, dims, channels)
    ]


# --------------------------------------------------------------------------- counts


def test_parameter_counts_match_the_paper():
    assert count_parameters(PaperGenerator()) == 440_106
    critic = PaperCritic()
    assert count_parameters(critic) == 177_858
    assert count_parameters(critic.attention) == 341
    assert count_parameters(PaperCritic(PaperCriticOptions(attention="linear"))) == 177_858
    # spectral norm's power-iteration vectors are buffers, not parameters
    assert any(name.endswith("_u") for name, _ in critic.named_buffers())


def test_registry_builds_the_paper_parts():
    audio = AudioSpec()
    generator = registry("generator").create("paper-generator", {}, audio)
    critic = registry("critic").create("paper-critic", {"attention": "linear"}, audio)
    assert isinstance(generator, Generator) and isinstance(critic, Critic)
    assert critic.attention.kind == "linear"


# --------------------------------------------------------------------------- generator


def test_generator_output_shape_and_range():
    torch.manual_seed(0)
    generator = PaperGenerator()
    z = generator.sample_latent(2)
    assert z.shape == (2, 128, 1, 1)
    image = generator(z)
    assert image.shape == (2, 2, 256, 256)
    assert image.abs().max() <= 1
    generator.eval()
    assert torch.equal(generator(z), generator(z.flatten(1)))  # (B, latent) is accepted too


def test_generator_output_bias_starts_at_the_data_mean_and_loads_without_it():
    torch.manual_seed(0)
    options = PaperGeneratorOptions(output_bias="data-mean")
    gen = PaperGenerator(options).eval()
    assert sum(p.numel() for p in gen.parameters()) == 440_106 + 2 * 256 * 256
    mean = torch.linspace(-1, 0.9, 256).repeat(2, 256, 1)
    gen.start_from_data(mean)
    z = torch.zeros(3, 128, 1, 1)
    hidden = gen.deconv_blocks[:-1](z)
    expected = torch.tanh(hidden + torch.atanh(mean.clamp(-0.98, 0.98)))
    assert torch.allclose(gen(z), expected, atol=1e-6)
    # Weights without the bias (the original's, a paper run's) load with a zero bias.
    plain = PaperGenerator().state_dict()
    gen.load_state_dict(plain)
    assert torch.count_nonzero(gen.output_bias) == 0
    twin = PaperGenerator().eval()
    twin.load_state_dict(plain)
    assert torch.allclose(gen(z), twin(z), atol=1e-6)
    # The paper generator has no bias and ignores the hook.
    paper = PaperGenerator()
    paper.start_from_data(mean)
    assert paper.output_bias is None


def test_generator_rejects_wrong_latent():
    with pytest.raises(InputError, match=r"\(B, 128, 1, 1\)"):
        PaperGenerator()(torch.randn(2, 64, 1, 1))


def test_generator_options_change_the_model():
    generator = PaperGenerator(PaperGeneratorOptions(latent_dim=32, dropout=0.0))
    assert generator(torch.randn(1, 32, 1, 1)).shape == (1, 2, 256, 256)
    assert generator.deconv_blocks[0].in_channels == 32


# --------------------------------------------------------------------------- critic


def test_critic_features_are_the_named_layers():
    torch.manual_seed(0)
    critic = PaperCritic().eval()
    with torch.no_grad():
        critic.attention.gamma.fill_(0.5)
    seen = {}
    for name in ("attention", "block5"):
        getattr(critic, name).register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, o))
    image = torch.rand(3, 2, 256, 256) * 2 - 1
    scores, features = critic.forward_features(image)
    assert scores.shape == (3,)
    assert critic.feature_layers == ("attention", "block5")
    assert list(features) == ["attention", "block5"]
    assert features["attention"].shape == (3, 16, 32, 32)
    assert features["block5"].shape == (3, 64, 8, 8)
    for name in features:
        assert features[name] is seen[name]
    assert torch.equal(critic(image), scores)


def test_critic_feature_layers_are_configurable():
    critic = PaperCritic(PaperCriticOptions(feature_layers=("block1", "block6")))
    _, features = critic.forward_features(torch.zeros(2, 2, 256, 256))
    assert {k: tuple(v.shape) for k, v in features.items()} == {
        "block1": (2, 4, 128, 128),
        "block6": (2, 128, 4, 4),
    }


def test_critic_input_feature_is_the_image_itself():
    critic = PaperCritic(PaperCriticOptions(feature_layers=("input", "block5")))
    image = torch.rand(2, 2, 256, 256)
    _, features = critic.forward_features(image)
    assert list(features) == ["input", "block5"]
    assert features["input"] is image


def test_critic_batch_of_one_in_training_mode():
    critic = PaperCritic().train()
    scores, _ = critic.forward_features(torch.rand(1, 2, 256, 256))
    assert scores.shape == (1,) and torch.isfinite(scores).all()


def test_critic_minibatch_std_sees_a_groups_variety_and_never_mixes_groups():
    critic = PaperCritic(PaperCriticOptions(minibatch_std=4, norm="layer", dropout=0.0)).eval()
    assert critic.final.in_channels == 129
    torch.manual_seed(0)
    varied = torch.rand(8, 2, 256, 256) * 2 - 1
    alike = varied[:1].expand(8, -1, -1, -1).clone()
    with torch.no_grad():
        # The same first item scores differently beside varied or identical companions ...
        assert not torch.allclose(critic(varied)[0], critic(alike)[0])
        # ... while items of another group do not change it.
        mixed = torch.cat([varied[:4], alike[4:]])
        torch.testing.assert_close(critic(mixed)[:4], critic(varied)[:4])
    assert PaperCritic().final.in_channels == 128  # off in the paper


@pytest.mark.parametrize(("c_in", "c_out", "size"), [(2, 4, 32), (4, 8, 16), (2, 4, 9)])
def test_few_channel_conv_equals_the_strided_conv(c_in, c_out, size):
    """Same weights; same outputs, gradients and gradient-penalty gradients, also when the
    penalty's first gradient is itself differentiated twice (odd sizes fall back)."""
    torch.manual_seed(0)
    fast = FewChannelConv2d(c_in, c_out, 4, 2, 1)
    plain = torch.nn.Conv2d(c_in, c_out, 4, 2, 1)
    plain.load_state_dict(fast.state_dict())
    x = torch.randn(3, c_in, size, size)
    results = []
    for conv in (fast, plain):
        xi = x.clone().requires_grad_()
        y = conv(xi)
        (g,) = torch.autograd.grad((y * y.detach().sign()).square().sum(), xi, create_graph=True)
        (gw,) = torch.autograd.grad(g.square().sum(), conv.weight, create_graph=True)
        (gw.square().sum() + g.square().sum()).backward()
        results.append((y, g, gw, conv.weight.grad, conv.bias.grad))
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    critic = PaperCritic()
    assert [isinstance(critic.get_submodule(f"block{i}.0"), FewChannelConv2d) for i in (1, 2, 3)] == [1, 1, 0]


def test_few_channel_conv_gradients_in_double_precision():
    """The three functions are each other's derivatives: torch's numerical checks to second order."""
    torch.manual_seed(0)
    conv = FewChannelConv2d(2, 3, 4, 2, 1).double()
    x = torch.randn(2, 2, 8, 8, dtype=torch.double, requires_grad=True)
    w = conv.weight.detach().clone().requires_grad_()
    forward = lambda x, w: conv._conv_forward(x, w, None)  # noqa: E731
    assert torch.autograd.gradcheck(forward, (x, w))
    assert torch.autograd.gradgradcheck(forward, (x, w))


@pytest.mark.parametrize(
    "shape", [(8, 2, 6, 2, 2, 16), (16, 8, 6, 4, 1, 8), (128, 64, 4, 2, 1, 4), (3, 3, 5, 2, 2, 4)]
)
def test_sub_pixel_conv_transpose_equals_the_transposed_conv(shape):
    """Same weights, outputs and gradients; the last shape (output not stride x input) falls back."""
    c_in, c_out, kernel, stride, padding, size = shape
    torch.manual_seed(0)
    fast = SubPixelConvTranspose2d(c_in, c_out, kernel, stride, padding)
    plain = torch.nn.ConvTranspose2d(c_in, c_out, kernel, stride, padding)
    plain.load_state_dict(fast.state_dict())
    x = torch.randn(2, c_in, size, size)
    results = []
    for layer in (fast, plain):
        xi = x.clone().requires_grad_()
        y = layer(xi)
        y.square().sum().backward()
        results.append((y, xi.grad, layer.weight.grad, layer.bias.grad))
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert isinstance(PaperGenerator().deconv_blocks[-2], SubPixelConvTranspose2d)


def test_critic_rejects_wrong_shape():
    with pytest.raises(InputError, match=r"\(B, 2, 256, 256\)"):
        PaperCritic()(torch.zeros(2, 2, 128, 256))


# --------------------------------------------------------------------------- attention


@pytest.mark.parametrize("dims", [1, 2])
def test_sorted_attention_matches_reference_values_grads_and_double_backward(dims):
    q, k, v = qkv(batch=3, dims=dims, channels=5, tokens=200)
    expected = reference_relu_attention(q, k, v)
    torch.testing.assert_close(relu_attention_sorted(q, k, v), expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(relu_attention_naive(q, k, v), expected, rtol=1e-10, atol=1e-12)

    weights = torch.randn_like(expected)
    grads_ref = torch.autograd.grad((expected * weights).sum(), (q, k, v))
    grads_fast = torch.autograd.grad((relu_attention_sorted(q, k, v) * weights).sum(), (q, k, v))
    for fast, ref in zip(grads_fast, grads_ref, strict=True):
        torch.testing.assert_close(fast, ref, rtol=1e-9, atol=1e-11)

    second_ref = torch.autograd.grad(penalty_of(reference_relu_attention, q, k, v), (q, k, v))
    second_fast = torch.autograd.grad(penalty_of(relu_attention_sorted, q, k, v), (q, k, v))
    for fast, ref in zip(second_fast, second_ref, strict=True):
        torch.testing.assert_close(fast, ref, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("shift", [0.0, 5.0])
def test_sorted_attention_in_float32_is_as_precise_as_naive(shift):
    """Prefix-sum differences must not lose precision, also when keys share a large mean."""
    q, k, v = (t.detach() + shift for t in qkv(batch=2, dims=2, channels=16, tokens=1024, seed=2))
    exact = reference_relu_attention(q, k, v)
    scale = exact.abs().max()
    error_sorted = (relu_attention_sorted(q.float(), k.float(), v.float()).double() - exact).abs().max()
    error_naive = (relu_attention_naive(q.float(), k.float(), v.float()).double() - exact).abs().max()
    assert error_sorted / scale < 1e-6
    assert error_sorted <= 2 * error_naive


def test_sorted_attention_passes_gradgradcheck():
    q, k, v = qkv(batch=2, dims=2, channels=3, tokens=9, seed=3)
    assert torch.autograd.gradcheck(relu_attention_sorted, (q, k, v))
    assert torch.autograd.gradgradcheck(relu_attention_sorted, (q, k, v))


def test_sorted_attention_zero_queries_and_keys_match_normalize():
    q, k, v = qkv(batch=1, dims=2, channels=4, tokens=50, seed=1)
    with torch.no_grad():
        q[:, :, :5] = 0  # no positive score at all -> F.normalize gives zeros
        k[:, :, 10:20] = 0
    torch.testing.assert_close(relu_attention_sorted(q, k, v), reference_relu_attention(q, k, v))
    assert relu_attention_sorted(q, k, v)[:, :, :5].abs().max() == 0


@pytest.mark.parametrize("impl", ["naive", "sorted"])
def test_attention_eps_bounds_the_gradient_of_an_almost_empty_query(impl):
    # Query 0 = (1, 0) sees two keys almost orthogonal to it: scores 1e-7 and 2e-7.
    q = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]], dtype=torch.float64, requires_grad=True)
    k = torch.tensor([[[1e-7, 2e-7], [1.0, -1.0]]], dtype=torch.float64)
    v = torch.tensor([[[1.0, -1.0]]], dtype=torch.float64)

    def grad_norm(eps: float) -> float:
        (grad,) = torch.autograd.grad(relu_attention(q, k, v, impl, eps)[0, 0, 0], q)
        return grad.norm().item()

    assert grad_norm(NORMALIZE_EPS) > 1e6  # (v1 - v2) / 3e-7: a spike in the critic's gradient
    assert grad_norm(0.01) == pytest.approx(2 / 0.01)
    # Queries with a normal amount of attention are untouched by the floor.
    q2, k2, v2 = qkv(batch=1, dims=2, channels=4, tokens=50, seed=3)
    torch.testing.assert_close(relu_attention(q2, k2, v2, impl, 0.01), reference_relu_attention(q2, k2, v2))


def test_critic_attention_eps_is_an_option():
    assert PaperCritic().attention.eps == PaperCriticOptions().attention_eps == NORMALIZE_EPS == 1e-12
    assert PaperCritic(PaperCriticOptions(attention_eps=0.01)).attention.eps == 0.01


def test_paper_layer_fast_equals_naive_at_paper_size_in_float32():
    """32x32 map (N = 1024), float32, the gradient penalty's parameter gradients included."""
    torch.manual_seed(0)
    layers = {impl: SelfAttention2d(16, impl=impl) for impl in ("naive", "sorted")}
    layers["sorted"].load_state_dict(layers["naive"].state_dict())
    x = torch.randn(2, 16, 32, 32)
    results = {}
    for impl, layer in layers.items():
        with torch.no_grad():
            layer.gamma.fill_(1.0)
        inp = x.clone().requires_grad_(True)
        out = layer(inp)
        (grad,) = torch.autograd.grad((out * x).sum(), inp, create_graph=True)
        penalty = (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()
        penalty.backward()
        results[impl] = (out.detach(), grad.detach(), {n: p.grad for n, p in layer.named_parameters()})
    (out_n, grad_n, params_n), (out_s, grad_s, params_s) = results["naive"], results["sorted"]
    torch.testing.assert_close(out_s, out_n, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(grad_s, grad_n, rtol=1e-4, atol=1e-5)
    # value.bias has zero gradient in exact arithmetic (weights sum to 1): compare all
    # parameters against the overall gradient scale, not each against its own.
    flat_n = torch.cat([params_n[name].flatten() for name in params_n])
    flat_s = torch.cat([params_s[name].flatten() for name in params_n])
    torch.testing.assert_close(flat_s, flat_n, rtol=1e-3, atol=1e-6 * flat_n.abs().max().item())


def test_auto_picks_naive_for_wide_queries_and_sorted_refuses_them():
    q, k, v = qkv(batch=1, dims=4, channels=3, tokens=20)
    torch.testing.assert_close(relu_attention(q, k, v, "auto"), reference_relu_attention(q, k, v))
    with pytest.raises(ValueError, match="at most 2"):
        relu_attention_sorted(q, k, v)
    assert SelfAttention2d(32).query.out_channels == 4


def test_linear_attention_matches_its_quadratic_form():
    q, k, v = qkv(batch=2, dims=2, channels=6, tokens=40)
    phi_q, phi_k = torch.nn.functional.elu(q) + 1, torch.nn.functional.elu(k) + 1
    scores = torch.einsum("bdi,bdj->bij", phi_k, phi_q)
    expected = torch.einsum("bci,bij->bcj", v, scores / scores.sum(dim=1, keepdim=True))
    torch.testing.assert_close(kernel_linear_attention(q, k, v), expected)


@pytest.mark.parametrize("kind", ["paper", "linear"])
def test_attention_layer_starts_as_identity(kind):
    layer = SelfAttention2d(16, kind=kind)
    x = torch.randn(2, 16, 8, 8)
    assert torch.equal(layer(x), x)


def test_whole_critic_gradient_penalty_same_with_naive_and_sorted_attention():
    torch.manual_seed(0)
    critics = {
        impl: PaperCritic(PaperCriticOptions(attention_impl=impl)).eval() for impl in ("naive", "sorted")
    }
    critics["sorted"].load_state_dict(critics["naive"].state_dict())
    image = torch.rand(2, 2, 256, 256) * 2 - 1
    grads = {}
    for impl, critic in critics.items():
        with torch.no_grad():
            critic.attention.gamma.fill_(2.0)
        x = image.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
        (g.flatten(1).norm(dim=1) - 1).pow(2).mean().backward()
        grads[impl] = {n: p.grad for n, p in critic.named_parameters()}
    for name, ref in grads["naive"].items():
        torch.testing.assert_close(grads["sorted"][name], ref, rtol=1e-3, atol=1e-5, msg=name)


# --------------------------------------------------------------------------- dropout


def test_dropout_matches_nn_dropout_semantics():
    torch.manual_seed(0)
    layer = Dropout(0.2)
    x = torch.ones(200_000, requires_grad=True)
    y = layer(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.8) < 0.01
    scale = 1 / (1 - round(0.2 * 2**16) / 2**16)  # p to 16 bits: 1.2499928 for 0.2
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], scale))
    torch.manual_seed(0)
    assert torch.equal(layer(x), y)  # seeded masks repeat
    y.sum().backward()
    torch.testing.assert_close(x.grad, y.detach())  # gradient is the same scaled mask
    layer.eval()
    assert layer(x) is x
    assert Dropout(0.0)(x) is x
