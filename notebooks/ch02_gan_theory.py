# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: nbgrader,tags,-all
#     notebook_metadata_filter: kernelspec,jupytext,-jupytext.text_representation.jupytext_version,-jupytext.text_representation.format_version
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 2 — GAN theory
#
# A generative adversarial network {cite}`goodfellow2014gan` trains two networks against each
# other. The **generator** $G$ turns noise $z \sim p(z) = \mathcal N(0, I)$ into samples $G(z)$,
# whose distribution we call $p_g$. The **discriminator** $D$ outputs the probability
# $D(x) \in (0, 1)$ that $x$ came from the data rather than from $G$. They play
#
# $$
# \min_G \max_D \; V(D, G) = \mathbb E_{x \sim p_\text{data}}[\log D(x)]
#   + \mathbb E_{z \sim p(z)}[\log(1 - D(G(z)))].
# $$
#
# This chapter derives what the game optimises and checks every step numerically:
#
# 1. for a fixed $G$ the best discriminator is $D^* = p_\text{data} / (p_\text{data} + p_g)$;
# 2. plugged in, the game becomes $C(G) = -\log 4 + 2\,\mathrm{JSD}(p_\text{data} \,\|\, p_g)$,
#    minimised, with value $-\log 4$, exactly at $p_g = p_\text{data}$;
# 3. why the generator should minimise $-\log D(G(z))$ instead of $\log(1 - D(G(z)))$, and which
#    divergence it then follows (not the JSD);
# 4. what an affine generator and a linear discriminator cannot represent;
# 5. why plain gradient descent can circle the equilibrium forever (the Dirac-GAN).
#
# All losses in `course_lib.gan` take the discriminator's **logit** $l(x)$, with
# $D(x) = \sigma(l(x))$, and are written with softplus; chapter 3 shows why.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy import stats
from scipy.spatial.distance import jensenshannon
from torch import nn
from torch.distributions import Normal

from course_lib import gan, gan_theory, train, utils
from course_lib.likelihood import gaussian_mixture

utils.seed_everything(0)
steps = utils.fast_or_full(600, 4000)  # discriminator training steps

# %% [markdown]
# ## 1. The optimal discriminator
#
# Write both expectations as integrals over $x$; the generator's term uses
# $x = G(z)$, whose density is $p_g$:
#
# $$
# V(D, G) = \int \big( p_\text{data}(x) \log D(x) + p_g(x) \log(1 - D(x)) \big)\, dx .
# $$
#
# $D$ is free to choose $D(x)$ separately at every $x$, so we maximise the integrand pointwise.
# For $a, b > 0$ the function $y \mapsto a \log y + b \log(1-y)$ on $(0, 1)$ has derivative
# $a/y - b/(1-y)$, zero at $y = a/(a+b)$, and is concave, so that is its maximum. Hence
#
# $$
# \boxed{D^*_G(x) = \frac{p_\text{data}(x)}{p_\text{data}(x) + p_g(x)}}
# \qquad\Longleftrightarrow\qquad
# l^*(x) = \log p_\text{data}(x) - \log p_g(x),
# $$
#
# the optimal logit is the log density ratio. (`gan.optimal_discriminator`.)
#
# **Check.** Take two fixed 1-D Gaussians, $p_\text{data} = \mathcal N(1, 1)$ and
# $p_g = \mathcal N(-1, 1.5^2)$. Train a small discriminator network with the discriminator
# loss $-V$ (`gan.d_loss`) on samples of each, then compare $\sigma(l(x))$ with $D^*$ on a grid.
# Nothing tells the network the formula: it must find it by minimising the loss.

# %%
p_data, p_g = Normal(1.0, 1.0), Normal(-1.0, 1.5)
n = 100_000
x_real, x_fake = p_data.sample((n, 1)), p_g.sample((n, 1))  # (n, 1) each


def make_discriminator() -> nn.Module:
    return nn.Sequential(
        nn.Linear(1, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1)
    )


def train_discriminator(
    D: nn.Module, real: torch.Tensor, fake: torch.Tensor, steps: int
) -> dict:
    opt = torch.optim.Adam(D.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)

    def step(batch):
        xr, xf = batch
        loss = gan.d_loss(D(xr).squeeze(1), D(xf).squeeze(1))  # -V(D, G)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        return {"loss_d": loss.item()}

    return train.fit(step, (real, fake), batch_size=1024, steps=steps, desc="D")


D = make_discriminator()
hist = train_discriminator(D, x_real, x_fake, steps)

grid = torch.linspace(-3, 3, 121)[:, None]  # (121, 1): where both densities have mass
d_star = gan.optimal_discriminator(
    p_data.log_prob(grid).exp(), p_g.log_prob(grid).exp()
)
with torch.no_grad():
    d_net = torch.sigmoid(D(grid))
err = (d_net - d_star).abs().max().item()
print(f"max |sigmoid(l(x)) - D*(x)| on [-3, 3]: {err:.4f}")
assert err < 0.03, err

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
axes[0].plot(
    grid, p_data.log_prob(grid).exp(), label=r"$p_\mathrm{data} = \mathcal{N}(1, 1)$"
)
axes[0].plot(grid, p_g.log_prob(grid).exp(), label=r"$p_g = \mathcal{N}(-1, 1.5^2)$")
axes[0].set_title("the two densities")
axes[0].legend()
axes[1].plot(grid, d_star, "k", lw=3, alpha=0.4, label=r"analytic $D^*$")
axes[1].plot(grid, d_net, "r--", label="trained discriminator")
axes[1].set_title(f"max error {err:.3f}")
axes[1].legend();
# %% [markdown]
# ## 2. The value at the optimum and the Jensen–Shannon divergence
#
# Substitute $D^*$ into $V$. Writing $m = \tfrac12(p_\text{data} + p_g)$ for the mixture,
#
# $$
# C(G) = \max_D V(D, G)
# = \mathbb E_{p_\text{data}}\Big[\log \frac{p_\text{data}}{2m}\Big]
# + \mathbb E_{p_g}\Big[\log \frac{p_g}{2m}\Big]
# = -\log 4 + \mathrm{KL}(p_\text{data} \,\|\, m) + \mathrm{KL}(p_g \,\|\, m),
# $$
#
# and the two KL terms are twice the Jensen–Shannon divergence:
#
# $$
# \boxed{C(G) = -\log 4 + 2\,\mathrm{JSD}(p_\text{data} \,\|\, p_g)} .
# $$
#
# Since $\mathrm{JSD} \ge 0$ with equality only when the distributions agree, the generator's
# best move is $p_g = p_\text{data}$. There $D^* = \tfrac12$ everywhere and
# $C = \log\tfrac12 + \log\tfrac12 = -\log 4$.
#
# **Check**, three ways for the Gaussians above:
#
# * $C(G)$ by numerical integration of $V(D^*, G)$ on a fine grid;
# * $-\log 4 + 2\,\mathrm{JSD}$ with the JSD from `scipy.spatial.distance.jensenshannon`
#   (it returns $\sqrt{\mathrm{JSD}}$, natural log);
# * a Monte Carlo estimate of $V$ with the *trained* network (`gan.gan_value` on fresh
#   samples): it can only reach $C(G)$ from below, up to sampling noise.

# %%
xs = torch.linspace(-15, 15, 30_001, dtype=torch.float64)
pd_ = Normal(1.0, 1.0).log_prob(xs).exp()  # float64 on the grid
pg_ = Normal(-1.0, 1.5).log_prob(xs).exp()
ds = gan.optimal_discriminator(pd_, pg_)
c_integral = torch.trapezoid(pd_ * torch.log(ds) + pg_ * torch.log1p(-ds), xs).item()
jsd = (
    jensenshannon(pd_.numpy(), pg_.numpy()) ** 2
)  # scipy normalises the two vectors itself
c_jsd = -math.log(4) + 2 * jsd

m = 100_000
with torch.no_grad():
    v_trained = gan.gan_value(
        D(p_data.sample((m, 1))).squeeze(1), D(p_g.sample((m, 1))).squeeze(1)
    ).item()
print(f"C(G) by integration   {c_integral:.5f}")
print(f"-log 4 + 2 JSD        {c_jsd:.5f}   (JSD = {jsd:.4f} nats)")
print(f"V(trained D, G) by MC {v_trained:.5f}")
assert abs(c_integral - c_jsd) < 1e-6
assert -math.log(4) < c_integral < 0  # 0 < JSD < log 2
assert abs(v_trained - c_integral) < 0.01 and v_trained < c_integral + 0.005

# %% [markdown]
# At $p_g = p_\text{data}$ the value must be exactly $-\log 4$, and a discriminator trained to
# tell two samples of the *same* distribution apart can do no better than $D = \tfrac12$:

# %%
v_opt = gan.gan_value(torch.zeros(10), torch.zeros(10)).item()  # logit 0 means D = 1/2
D_same = make_discriminator()
train_discriminator(D_same, x_real, p_data.sample((n, 1)), steps // 4)
with torch.no_grad():
    v_same = gan.gan_value(
        D_same(p_data.sample((m, 1))).squeeze(1),
        D_same(p_data.sample((m, 1))).squeeze(1),
    ).item()
    dev = (torch.sigmoid(D_same(grid)) - 0.5).abs().max().item()
print(f"V at D = 1/2: {v_opt:.5f}, -log 4 = {-math.log(4):.5f}")
print(
    f"trained on p_data vs p_data: V = {v_same:.5f}, "
    f"max |D - 1/2| on the grid = {dev:.3f}"
)
assert abs(v_opt + math.log(4)) < 1e-6
assert abs(v_same + math.log(4)) < 0.01 and dev < 0.05

# %% [markdown]
# ### The JSD saturates, and with it the minimax loss
#
# Move the generator $p_g = \mathcal N(\mu_g, 1)$ away from $p_\text{data} = \mathcal N(0, 1)$.
# Once the two barely overlap, $\mathrm{JSD} \to \log 2$ and $C(G) \to 0$: the criterion becomes
# *flat*. This is a statement about the **minimax** loss. The generator's step holds $D^*$ fixed
# and descends $\mathbb E_{p_g}[\log(1 - D^*(x))]$, and by the envelope theorem ($D^*$ maximises
# $V$, so moving $D^*$ changes $V$ only to second order) the gradient of that term is exactly
# $dC/d\mu_g$: a perfect discriminator tells a far-away generator almost nothing about which way
# to move. Arjovsky and Bottou {cite}`arjovsky2017principled` prove this for disjoint or
# low-dimensional supports, where the saturating gradient vanishes altogether.
#
# The **non-saturating** loss $\mathbb E_{p_g}[-\log D^*(x)]$, the one this course trains with, does
# not saturate. Here $l^*(x) = \log p_\text{data}(x) - \log p_g(x) = -\mu_g x + \mu_g^2/2$, and the two
# gradients through the samples add up to
# $\mathbb E_{p_g}[\mu_g\,\sigma(l^*)] + \mathbb E_{p_g}[\mu_g\,\sigma(-l^*)] = \mu_g$: what one loses, the
# other gets. We compute $C$, $dC/d\mu_g$ (with $D^*$ moving along) and both generator gradients
# (with $D^*$ frozen, `gan_theory.generator_gradients`) by quadrature.

# %%
xw = gan_theory.grid()  # (30001,) on [-30, 30]: wide enough for p_g = N(10, 1)


def c_of_mu(mu: float) -> torch.Tensor:
    mu = torch.tensor(mu, dtype=torch.float64, requires_grad=True)
    pd_ = Normal(0.0, 1.0).log_prob(xw).exp()
    pg_ = Normal(mu, 1.0).log_prob(xw).exp()
    ds = gan.optimal_discriminator(pd_, pg_).clamp(1e-300, 1 - 1e-16)
    c = torch.trapezoid(pd_ * torch.log(ds) + pg_ * torch.log1p(-ds), xw)
    (slope,) = torch.autograd.grad(c, mu)
    return torch.stack([c.detach(), slope])


mus = torch.linspace(0, 10, 41)
cs = torch.stack([c_of_mu(float(mu)) for mu in mus])  # (41, 2): C and dC/dmu
g_star = [gan_theory.generator_gradients(float(mu), xs=xw) for mu in mus]
g_sat = torch.tensor([g["saturating"] for g in g_star], dtype=torch.float64)  # (41,)
g_ns = torch.tensor([g["non_saturating"] for g in g_star], dtype=torch.float64)  # (41,)

fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
axes[0].plot(mus, cs[:, 0], label=r"$C(G)$")
axes[0].axhline(-math.log(4), ls=":", c="k", label=r"$-\log 4$")
axes[0].plot(mus, cs[:, 1], label=r"$dC/d\mu_g$")
axes[0].set_xlabel(r"$\mu_g$")
axes[0].legend()
axes[1].semilogy(
    mus[1:],
    g_sat[1:],
    label=r"saturating $\partial_{\mu_g}\mathbb{E}_{p_g}[\log(1-D^*)]$",
)
axes[1].semilogy(
    mus[1:],
    g_ns[1:],
    label=r"non-saturating $\partial_{\mu_g}\mathbb{E}_{p_g}[-\log D^*]$",
)
axes[1].set_xlabel(r"$\mu_g$ (data mean 0)")
axes[1].set_title(r"generator gradient under a frozen $D^*$")
axes[1].legend(fontsize=8);
# %% [markdown]
# Both gradients are positive for $\mu_g > 0$: a gradient step moves $\mu_g$ towards the data.
# The cell below prints their values at $\mu_g = 10$ and checks the envelope theorem (the
# saturating gradient with $D^*$ frozen equals $dC/d\mu_g$ with $D^*$ moving) on the whole sweep.

# %%
c_far, slope_far = cs[-1].tolist()
slope_near = cs[mus.sub(1.0).abs().argmin(), 1].item()
print(
    f"C(mu=0) = {cs[0, 0]:.5f}, C(mu=10) = {c_far:.2e}; "
    f"dC/dmu at 1: {slope_near:.3f}, at 10: {slope_far:.1e}"
)
print(
    f"at mu_g = 10: saturating gradient {g_sat[-1]:.2e}, non-saturating {g_ns[-1]:.4f}"
)
print(
    "max |saturating - dC/dmu| over the sweep:",
    f"{(g_sat - cs[:, 1].double()).abs().max():.1e}",
)
assert abs(cs[0, 0] + math.log(4)) < 1e-6 and abs(c_far) < 1e-3
assert abs(slope_far) < 1e-3 * abs(slope_near)
assert (
    g_sat - cs[:, 1].double()
).abs().max() < 1e-6  # envelope theorem: the minimax step follows dC/dmu
assert 0 < g_sat[-1] < 1e-5 and abs(g_ns[-1] - 10) < 1e-3  # vanishing vs about mu_g
assert torch.allclose(g_sat + g_ns, mus.double(), atol=1e-6)  # the two add up to mu_g

# %% [markdown]
# ### What the non-saturating loss minimises
#
# With the minimax loss and $D^*$, the generator minimises the JSD. The non-saturating loss does
# not: Arjovsky and Bottou {cite}`arjovsky2017principled` (theorem 2.5) show that, under the
# optimal discriminator of the current generator $\theta_0$, its gradient is that of another
# divergence. The derivation takes three lines. Write $l^* = \log(p_\text{data}/p_{g_0})$, so
# $-\log D^* = \log(1 + e^{-l^*}) = \log\frac{p_\text{data} + p_{g_0}}{p_\text{data}}$ and, holding
# $D^*$ fixed,
#
# $$
# \mathbb E_{p_\theta}[-\log D^*] = \mathbb E_{p_\theta}\Big[\log\frac{p_{g_0}}{p_\text{data}}\Big]
#   + \mathbb E_{p_\theta}\Big[\log\frac{p_\text{data} + p_{g_0}}{p_{g_0}}\Big].
# $$
#
# At $\theta = \theta_0$ the first term has the gradient of $\mathrm{KL}(p_\theta\,\|\,p_\text{data})$
# (the derivative of $\mathbb E_{p_\theta}[\log p_\theta]$ through the density's own argument is
# $\int \nabla p_\theta = 0$). The second is $-\mathbb E_{p_\theta}[\log(1 - D^*)] + \text{const}$, whose
# gradient is minus the saturating one, that is $-\nabla C = -2\nabla\mathrm{JSD}$ by the envelope
# theorem. Hence
#
# $$
# \boxed{\nabla_\theta\, \mathbb E_{p_\theta}[-\log D^*(x)]\Big|_{\theta_0}
#   = \nabla_\theta\Big[\mathrm{KL}(p_\theta\,\|\,p_\text{data}) - 2\,\mathrm{JSD}(p_\text{data}\,\|\,p_\theta)\Big]_{\theta_0}} .
# $$
#
# The KL is the *reverse* one of chapter 1 (mode seeking), and the $-2\,\mathrm{JSD}$ term pushes
# the distributions *apart*. So "a GAN minimises the JSD" holds only for the minimax loss with
# the optimal discriminator. **Check** (`gan_theory.theorem_2_5_gap`): the largest difference
# between the two gradients, in $\mu_g$ and $\sigma_g$, at several generators
# $\mathcal N(\mu_g, \sigma_g^2)$ against $\mathcal N(0, 1)$. The same function applied to the
# plausible wrong answers, $\mathrm{KL} - \mathrm{JSD}$ and the forward
# $\mathrm{KL}(p_\text{data}\,\|\,p_\theta) - 2\,\mathrm{JSD}$, shows the check can tell them apart.


# %%
def kl_minus_jsd(mu, sigma, mu_d, sigma_d):  # a wrong candidate: the JSD with weight 1
    t = Normal(mu, sigma).log_prob(xw), Normal(mu_d, sigma_d).log_prob(xw)
    return gan_theory.kl(*t, xw) - gan_theory.jsd(t[1], t[0], xw)


def forward_kl_minus_2jsd(
    mu, sigma, mu_d, sigma_d
):  # a wrong candidate: the KL of the other direction
    t = Normal(mu, sigma).log_prob(xw), Normal(mu_d, sigma_d).log_prob(xw)
    return gan_theory.kl(t[1], t[0], xw) - 2 * gan_theory.jsd(t[1], t[0], xw)


candidates = {
    "KL(p_g||p_data) - 2 JSD": gan_theory.kl_minus_2jsd,
    "KL - JSD": kl_minus_jsd,
    "KL(p_data||p_g) - 2 JSD": forward_kl_minus_2jsd,
}
generators = [(0.5, 1.0), (2.0, 1.0), (1.0, 0.6), (-1.5, 1.8)]
gaps = {
    name: max(gan_theory.theorem_2_5_gap(div, mu, s) for mu, s in generators)
    for name, div in candidates.items()
}
for name, gap in gaps.items():
    print(f"{name:25s} largest gradient gap {gap:.1e}")
assert gaps["KL(p_g||p_data) - 2 JSD"] < 1e-8
assert min(gaps["KL - JSD"], gaps["KL(p_data||p_g) - 2 JSD"]) > 0.05

# %% [markdown]
# ## 3. Saturating and non-saturating generator losses
#
# In practice $G$ takes gradient steps against the *current* discriminator. With the minimax
# loss it minimises $\mathcal L_G^\text{sat} = \mathbb E_z[\log(1 - \sigma(l(G(z))))]$. By the chain
# rule through the logit,
#
# $$
# \frac{\partial}{\partial l} \log(1 - \sigma(l)) = -\sigma(l) = -D(G(z)),
# \qquad
# \frac{\partial}{\partial l} \big(-\log \sigma(l)\big) = -(1 - \sigma(l)) = -(1 - D(G(z))).
# $$
#
# Early in training the fakes are poor, the discriminator rejects them, $D(G(z)) \approx 0$,
# and the saturating gradient vanishes exactly when the generator most needs it. Goodfellow
# et al. therefore train $G$ to maximise $\log D(G(z))$: the **non-saturating** loss
# $\mathcal L_G^\text{NS} = -\mathbb E_z[\log D(G(z))]$ has the same fixed point but a gradient
# near $-1$ for rejected fakes.
#
# **Check.** A poor generator $G(z) = \mu_g + \sigma_g z$ with $\mu_g = -4$, $\sigma_g = 1$, against
# data $\mathcal N(1, 1)$. This toy generator is an *affine* map of Gaussian noise, so $p_g$ is always
# a Gaussian: enough here, where the data are Gaussian too, and section 4 shows what it cannot do.
# We train the discriminator against it (it gets good quickly), freeze it,
# and compare $|\partial \mathcal L_G / \partial \mu_g|$ for the two losses (`gan.g_loss_saturating`,
# `gan.g_loss_nonsaturating`), by autograd through the frozen network
# (`gan_theory.generator_gradient_mc`). Then we do the same with the analytic $l^*$ for a sweep
# of generators.

# %%
mu_poor = -4.0
z = torch.randn(50_000, 1)
D_poor = make_discriminator()
train_discriminator(D_poor, x_real, (mu_poor + torch.randn(n, 1)), steps // 4)
D_poor.requires_grad_(False)

with torch.no_grad():
    print(f"mean D(G(z)) = {torch.sigmoid(D_poor(mu_poor + z)).mean():.2e}")
grad_sat = gan_theory.generator_gradient_mc(
    D_poor, mu_poor, 1.0, z, gan.g_loss_saturating
)
grad_ns = gan_theory.generator_gradient_mc(
    D_poor, mu_poor, 1.0, z, gan.g_loss_nonsaturating
)
print(f"dL/dmu_g  saturating: {grad_sat:.2e}   non-saturating: {grad_ns:.2e}")
assert (
    grad_sat < 0 and grad_ns < 0
)  # both say "move mu_g to the right", towards the data
assert abs(grad_ns) > 10 * abs(grad_sat)

# %% [markdown]
# Both gradients point the right way, but the saturating one is more than ten times smaller,
# and the gap grows as the discriminator gets more confident.
# With the analytic optimal logit $l^*(x) = \log p_\text{data}(x) - \log p_g(x)$, held fixed
# while we differentiate through the samples (`gan_theory.generator_gradients`, by quadrature),
# we can sweep the generator's mean:

# %%
sweep = torch.linspace(-6, 0.5, 27)  # step 0.25
gs = torch.tensor(
    [
        list(gan_theory.generator_gradients(float(mu), mu_data=1.0, xs=xw).values())
        for mu in sweep
    ]
).abs()
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.semilogy(sweep, gs[:, 0], label="saturating  log(1 - D(G(z)))")
ax.semilogy(sweep, gs[:, 1], label="non-saturating  -log D(G(z))")
ax.set_xlabel(r"generator mean $\mu_g$ (data mean is 1)")
ax.set_ylabel(r"$|\partial \mathcal{L}_G / \partial \mu_g|$")
ax.legend()
ratio = gs[:, 1] / gs[:, 0]
dist = 1.0 - sweep  # distance to the data mean, in standard deviations
print(
    "ratio NS/sat at mu_g = -6, -4.5, -3, 0:",
    [round(float(ratio[i]), 1) for i in (0, 6, 12, 24)],
)
print(
    f"ratio > 100 from {dist[ratio > 100].min():.2f} standard deviations away; "
    f"below 100 up to {dist[ratio < 100].max():.2f}"
)
assert (
    ratio[dist >= 5.5] > 100
).all()  # 5.5 or more standard deviations from the data: > 100x
assert (
    ratio.diff() < 0
).all()  # and the gap grows the further the generator is from the data

# %% [markdown]
# Are these the gradients a *trained* discriminator gives? Take the network of section 1, trained
# against $p_g = \mathcal N(-1, 1.5^2)$, where $D^*$ is far from trivial ($l^*$ is a non-constant
# quadratic), and compare the generator's gradient through it with the analytic one. (At
# $p_g = p_\text{data}$ the comparison would prove nothing: there $l^* \equiv 0$ and both gradients
# vanish for any loss.)

# %%
z15 = torch.randn(200_000, 1)
exact = gan_theory.generator_gradients(-1.0, 1.5, mu_data=1.0, xs=xw)
trained = {
    name: gan_theory.generator_gradient_mc(D, -1.0, 1.5, z15, loss)
    for name, loss in gan.G_LOSSES.items()
}
rel = {name: abs(trained[name] - exact[name]) / abs(exact[name]) for name in exact}
for name in exact:
    print(
        f"{name:15s} through the trained D {trained[name]:+.4f}, "
        f"analytic {exact[name]:+.4f}, relative error {rel[name]:.3f}"
    )
assert rel["saturating"] < 0.05
assert trained["non_saturating"] < 0 and exact["non_saturating"] < 0

# %% [markdown]
# The saturating gradient through the trained network is the analytic one (the cell above prints
# the relative error). The non-saturating gradient is off by much more, and the reason is in the
# chain rule: per fake it is $-(1 - D)\,\partial l/\partial x$, largest for the fakes $D$ rejects
# most confidently, far in $p_g$'s left tail. There the loss is flat in $l$ (a fake with
# $D \approx 0$ costs $\approx 0$ whatever the exact logit), so training pins down the logit's
# *slope* only loosely, and the tanh network flattens where $l^*$ keeps falling. The
# non-saturating loss trades the vanishing gradient for a dependence on what the discriminator
# does where it has little reason to be accurate.

# %% [markdown]
# ## 4. What an affine generator and a linear discriminator cannot do
#
# A tempting minimal GAN, found in tutorials, pairs the generator $G(z) = \mu + \sigma z$ (noise
# $z \sim \mathcal N(0, 1)$ scaled and shifted) with the discriminator $D(x) = \sigma(wx + b)$. Both are
# too weak for the theory above.
#
# **The generator.** An affine map of a Gaussian is a Gaussian:
# $p_g = \mathcal N(\mu, \sigma^2)$ whatever $\mu$ and $\sigma$ are. Against the bimodal data of
# chapter 1, $0.4\,\mathcal N(-2, 0.5^2) + 0.6\,\mathcal N(2, 0.5^2)$, no such generator reaches
# $\mathrm{JSD} = 0$: `gan_theory.best_gaussian_jsd` finds the best one by quadrature and L-BFGS. A
# *non-linear* map of the same noise can match it exactly: $G(z) = F^{-1}(\Phi(z))$, with $F$ the
# data's CDF and $\Phi$ the standard normal one, pushes $\mathcal N(0, 1)$ onto the data (the
# quantile transform; a generator network has to learn some such map). A Kolmogorov–Smirnov test
# on samples tells the two apart.

# %%
bimodal = gaussian_mixture(
    torch.tensor([0.4, 0.6], dtype=torch.float64),
    torch.tensor([-2.0, 2.0], dtype=torch.float64),
    torch.tensor([0.5, 0.5], dtype=torch.float64),
)
jsd_affine, mu_best, sigma_best = gan_theory.best_gaussian_jsd(bimodal.log_prob)
jsd_gauss_target = gan_theory.best_gaussian_jsd(Normal(1.0, 2.0).log_prob)[
    0
]  # same search, Gaussian data

xq = torch.linspace(-6, 6, 24_001, dtype=torch.float64)
cdf = bimodal.cdf(xq)  # (24001,) increasing: F on a fine grid
z_noise = torch.randn(
    5000, generator=torch.Generator().manual_seed(0), dtype=torch.float64
)
quantile_map = torch.from_numpy(
    np.interp(Normal(0.0, 1.0).cdf(z_noise).numpy(), cdf.numpy(), xq.numpy())
)  # F^-1(Phi(z))
affine_map = mu_best + sigma_best * z_noise
ks = {
    name: stats.kstest(
        x.numpy(), lambda v: bimodal.cdf(torch.as_tensor(v)).numpy()
    ).pvalue
    for name, x in (("affine", affine_map), ("quantile", quantile_map))
}
print(
    f"best affine generator N({mu_best:.3f}, {sigma_best:.3f}^2): "
    f"JSD = {jsd_affine:.4f} nats "
    f"(the same search on Gaussian data: {jsd_gauss_target:.1e})"
)
print(
    f"KS p-value against the data: affine {ks['affine']:.1e}, "
    f"non-linear F^-1(Phi(z)) {ks['quantile']:.3f}"
)
assert jsd_affine > 0.1 and jsd_gauss_target < 1e-8
assert ks["affine"] < 1e-6 and ks["quantile"] > 0.01

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.fill_between(xq, bimodal.log_prob(xq).exp(), color="lightgrey", label="data")
ax.hist(
    affine_map.numpy(),
    bins=80,
    density=True,
    histtype="step",
    label=r"best affine $G(z) = \mu + \sigma z$",
)
ax.hist(
    quantile_map.numpy(),
    bins=80,
    density=True,
    histtype="step",
    label=r"$G(z) = F^{-1}(\Phi(z))$",
)
ax.legend(fontsize=8);
# %% [markdown]
# **The discriminator.** $D^*$ has the logit $l^* = \log p_\text{data} - \log p_g$. For two Gaussians
# with different variances, as in section 1,
#
# $$
# l^*(x) = \log\frac{\sigma_g}{\sigma_\text{data}} - \frac{(x - \mu_\text{data})^2}{2\sigma_\text{data}^2}
#   + \frac{(x - \mu_g)^2}{2\sigma_g^2},
# $$
#
# a quadratic in $x$, so no linear logit $wx + b$ represents it, and a linear discriminator cannot
# reach $C(G)$: everything built on $D^*$ (the JSD, the gradients above) does not hold for it. We
# fit the best linear and the best quadratic logit by maximising $V$ exactly (quadrature, that is
# infinitely many samples: `gan_theory.best_polynomial_logit`) for $\mathcal N(1, 1)$ against
# $\mathcal N(-1, 1.5^2)$, and once more with equal variances, where $l^*$ is linear.

# %%
xg = gan_theory.grid(-20.0, 20.0, 20_001)
log_pd, log_pg = (
    Normal(1.0, 1.0).log_prob(xg).double(),
    Normal(-1.0, 1.5).log_prob(xg).double(),
)
c_true = -math.log(4) + 2 * gan_theory.jsd(log_pd, log_pg, xg).item()
coef_lin, v_lin = gan_theory.best_polynomial_logit(log_pd, log_pg, xg, 1)
coef_quad, v_quad = gan_theory.best_polynomial_logit(log_pd, log_pg, xg, 2)
coef_star = torch.tensor(
    [math.log(1.5) - 0.5 + 1 / 4.5, 1 + 2 / 4.5, -0.5 + 1 / 4.5], dtype=torch.float64
)  # l* expanded
log_pg_eq = Normal(-1.0, 1.0).log_prob(xg).double()
c_eq = -math.log(4) + 2 * gan_theory.jsd(log_pd, log_pg_eq, xg).item()
_, v_lin_eq = gan_theory.best_polynomial_logit(log_pd, log_pg_eq, xg, 1)

powers = torch.stack(
    [grid.squeeze(1).double() ** k for k in range(3)], 1
)  # (121, 3) on [-3, 3]
d_lin, d_quad = (
    torch.sigmoid(powers[:, :2] @ coef_lin),
    torch.sigmoid(powers @ coef_quad),
)
err_lin = (d_lin - d_star.squeeze(1)).abs().max().item()
print(
    f"C(G) = {c_true:.5f}; best quadratic logit V = {v_quad:.5f}, "
    f"best linear V = {v_lin:.5f} (gap {c_true - v_lin:.4f} nats)"
)
print(
    f"quadratic coefficients {coef_quad.numpy().round(4)}, "
    f"l* = {coef_star.numpy().round(4)}"
)
print(
    f"max |D_linear - D*| on [-3, 3]: {err_lin:.3f}; "
    f"equal variances: linear V = {v_lin_eq:.5f}, C = {c_eq:.5f}"
)
assert abs(v_quad - c_true) < 1e-6 and torch.allclose(coef_quad, coef_star, atol=1e-4)
assert c_true - v_lin > 0.01 and err_lin > 0.05
assert abs(v_lin_eq - c_eq) < 1e-6  # the gap comes from the unequal variances

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(grid, d_star, "k", lw=3, alpha=0.4, label=r"$D^*$")
ax.plot(grid, d_quad, "g--", label="best quadratic logit")
ax.plot(grid, d_lin, "r", label=r"best linear logit $\sigma(wx + b)$")
ax.set_xlabel("x")
ax.legend(fontsize=8);
# %% [markdown]
# ## 5. The Dirac-GAN: gradient descent circles the equilibrium
#
# Even when $G$ and $D$ can represent the solution, gradient descent need not find it.
# Mescheder et al. {cite}`mescheder2018convergence` reduce the game to two numbers: data
# $p_\text{data} = \delta_0$, a generator that outputs the constant $\theta$, and a linear
# discriminator logit $l(x) = \psi x$. With $f(t) = -\log(1 + e^{-t})$ the GAN objective is
#
# $$
# L(\theta, \psi) = f(\psi\theta) + f(0), \qquad \min_\theta \max_\psi L,
# $$
#
# whose only equilibrium is $(\theta, \psi) = (0, 0)$. The gradient field is
# $v = (-\psi f'(\psi\theta),\ \theta f'(\psi\theta))$, a rotation: its Jacobian at the equilibrium,
# $\begin{pmatrix} 0 & -f'(0) \\ f'(0) & 0 \end{pmatrix}$, has the imaginary eigenvalues $\pm i f'(0)$.
# Simultaneous gradient steps of size $h$ multiply $\theta^2 + \psi^2$ by exactly
# $1 + h^2 f'(\psi\theta)^2 > 1$ (square the update): they spiral **out**. Alternating steps
# circle without getting closer. The R1 penalty $\tfrac\gamma2\|\nabla_x l\|^2 = \tfrac\gamma2\psi^2$
# on the data adds $-\gamma\psi$ to $\psi$'s update; the eigenvalues become
# $\tfrac12(-\gamma \pm \sqrt{\gamma^2 - 4f'(0)^2})$, with negative real parts, and the iterates
# converge (`gan_theory.dirac_gan`; chapter 4 uses R1 for the conditional GAN).

# %%
dirac_steps, dirac_lr = 1000, 0.1
runs = {
    "simultaneous": gan_theory.dirac_gan(1.0, 1.0, dirac_steps, dirac_lr),
    "alternating": gan_theory.dirac_gan(
        1.0, 1.0, dirac_steps, dirac_lr, alternating=True
    ),
    "simultaneous + R1 (γ = 1)": gan_theory.dirac_gan(
        1.0, 1.0, dirac_steps, dirac_lr, r1_gamma=1.0
    ),
}
radius = {name: traj.norm(dim=1) for name, traj in runs.items()}  # distance to (0, 0)
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for name, traj in runs.items():
    axes[0].plot(traj[:, 0], traj[:, 1], lw=1, label=name)
    axes[1].semilogy(radius[name], label=name)
axes[0].plot(0, 0, "k*", ms=12)
axes[0].set_xlabel(r"$\theta$ (generator)")
axes[0].set_ylabel(r"$\psi$ (discriminator)")
axes[0].set_aspect("equal")
axes[1].set_xlabel("step")
axes[1].set_ylabel("distance to the equilibrium")
axes[1].legend(fontsize=8)
for name, r in radius.items():
    print(
        f"{name:26s} distance {r[0]:.3f} -> {r[-1]:.3g} (min {r.min():.3g}) "
        f"after {dirac_steps} steps"
    )
r_sim, r_alt, r_r1 = radius.values()
assert (r_sim.diff() > 0).all() and r_sim[-1] > 1.5 * r_sim[
    0
]  # spirals out at every step
assert r_alt.min() > 0.9 * r_alt[0]  # circles, never gets closer
assert r_r1[-1] < 1e-6 * r_r1[0]  # R1: converges

# %% [markdown]
# ## Exercises
#
# **Exercise 1.** Write the discriminator loss $-\mathbb E[\log D(x)] - \mathbb E[\log(1 - D(G(z)))]$
# **from logits**, averaged over each batch. Do not call `torch.log(torch.sigmoid(...))`: use
# $-\log \sigma(l) = \operatorname{softplus}(-l)$ and $-\log(1 - \sigma(l)) = \operatorname{softplus}(l)$.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "ch02-ex1", "locked": false, "schema_version": 3, "solution": true, "task": false}
import torch.nn.functional as F


def discriminator_loss(real_logits, fake_logits):
    """-E[log D(x)] - E[log(1 - D(G(z)))] from logits (B,) and (B,); a scalar tensor."""
    ### BEGIN SOLUTION
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch02-ex1-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from course_lib.checks.ch02 import check_d_loss

check_d_loss(discriminator_loss)

# %% [markdown]
# **Exercise 2.** Write the non-saturating generator loss $-\mathbb E[\log D(G(z))]$ from the
# logits of the fakes.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "ch02-ex2", "locked": false, "schema_version": 3, "solution": true, "task": false}
import torch.nn.functional as F  # noqa: F811  (each exercise cell runs on its own)


def generator_loss(fake_logits):
    """-E[log D(G(z))] from the logits (B,) of D on fakes; a scalar tensor."""
    ### BEGIN SOLUTION
    return F.softplus(-fake_logits).mean()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ch02-ex2-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from course_lib.checks.ch02 import check_g_loss_nonsaturating

check_g_loss_nonsaturating(generator_loss)

# %% [markdown]
# ## Summary
#
# | result | formula | checked by |
# |---|---|---|
# | optimal discriminator | $D^* = p_\text{data}/(p_\text{data}+p_g)$ | trained network vs analytic, max error < 0.03 |
# | value of the game | $C(G) = -\log 4 + 2\,\mathrm{JSD}$ | integration vs scipy's JSD vs Monte Carlo |
# | optimum | $C = -\log 4$ at $p_g = p_\text{data}$ | $D = \tfrac12$ exactly, and a trained $D$ on equal data |
# | non-saturating loss | gradient $1 - D(G(z))$ instead of $D(G(z))$ | > 10× (trained D) and > 100× (optimal D) larger for a poor generator |
# | the minimax loss saturates | saturating step $= dC/d\mu_g \to 0$; the NS step does not | quadrature, envelope theorem, both values at $\mu_g = 10$ |
# | what the NS loss descends | $\nabla\,\mathbb E_{p_g}[-\log D^*] = \nabla[\mathrm{KL}(p_g\|p_\text{data}) - 2\,\mathrm{JSD}]$ | gradients in $\mu_g, \sigma_g$; wrong candidates rejected |
# | affine $G$, linear $D$ | Gaussian $p_g$ only; $l^*$ quadratic when variances differ | best JSD against two modes; best linear vs quadratic logit |
# | Dirac-GAN | gradient descent circles $(0, 0)$; R1 converges | distance to the equilibrium over 1,000 steps |
#
# The code lives in `course_lib.gan` (`d_loss`, `gan_value`, `g_loss_saturating`,
# `g_loss_nonsaturating`, `optimal_discriminator`) and `course_lib.gan_theory` (the 1-D analytic
# results and the Dirac-GAN). Chapter 3 trains a GAN on MNIST with them.
