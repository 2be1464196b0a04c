# ---
# jupyter:
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
# 3. why the generator should minimise $-\log D(G(z))$ instead of $\log(1 - D(G(z)))$.
#
# All losses in `course_lib.gan` take the discriminator's **logit** $l(x)$, with
# $D(x) = \sigma(l(x))$, and are written with softplus; chapter 3 shows why.

# %%
import math

import matplotlib.pyplot as plt
import torch
from scipy.spatial.distance import jensenshannon
from torch import nn
from torch.distributions import Normal

from course_lib import gan, train, utils

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
    return nn.Sequential(nn.Linear(1, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1))


def train_discriminator(D: nn.Module, real: torch.Tensor, fake: torch.Tensor, steps: int) -> dict:
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
d_star = gan.optimal_discriminator(p_data.log_prob(grid).exp(), p_g.log_prob(grid).exp())
with torch.no_grad():
    d_net = torch.sigmoid(D(grid))
err = (d_net - d_star).abs().max().item()
print(f"max |sigmoid(l(x)) - D*(x)| on [-3, 3]: {err:.4f}")
assert err < 0.03, err

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
axes[0].plot(grid, p_data.log_prob(grid).exp(), label=r"$p_\mathrm{data} = \mathcal{N}(1, 1)$")
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
jsd = jensenshannon(pd_.numpy(), pg_.numpy()) ** 2  # scipy normalises the two vectors itself
c_jsd = -math.log(4) + 2 * jsd

m = 100_000
with torch.no_grad():
    v_trained = gan.gan_value(D(p_data.sample((m, 1))).squeeze(1), D(p_g.sample((m, 1))).squeeze(1)).item()
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
    v_same = gan.gan_value(D_same(p_data.sample((m, 1))).squeeze(1), D_same(p_data.sample((m, 1))).squeeze(1)).item()
    dev = (torch.sigmoid(D_same(grid)) - 0.5).abs().max().item()
print(f"V at D = 1/2: {v_opt:.5f}, -log 4 = {-math.log(4):.5f}")
print(f"trained on p_data vs p_data: V = {v_same:.5f}, max |D - 1/2| on the grid = {dev:.3f}")
assert abs(v_opt + math.log(4)) < 1e-6
assert abs(v_same + math.log(4)) < 0.01 and dev < 0.05

# %% [markdown]
# ### The JSD saturates
#
# Move the generator $p_g = \mathcal N(\mu_g, 1)$ away from $p_\text{data} = \mathcal N(0, 1)$.
# Once the two barely overlap, $\mathrm{JSD} \to \log 2$ and $C(G) \to 0$: the criterion becomes
# *flat*, so even a perfect discriminator tells a far-away generator almost nothing about
# which way to move {cite}`arjovsky2017wgan`. We compute $C$ and its slope $dC/d\mu_g$ by
# integration.

# %%
def c_of_mu(mu: float) -> torch.Tensor:
    mu = torch.tensor(mu, dtype=torch.float64, requires_grad=True)
    pd_ = Normal(0.0, 1.0).log_prob(xs).exp()
    pg_ = Normal(mu, 1.0).log_prob(xs).exp()
    ds = gan.optimal_discriminator(pd_, pg_).clamp(1e-300, 1 - 1e-16)
    c = torch.trapezoid(pd_ * torch.log(ds) + pg_ * torch.log1p(-ds), xs)
    (slope,) = torch.autograd.grad(c, mu)
    return torch.stack([c.detach(), slope])


mus = torch.linspace(0, 10, 41)
cs = torch.stack([c_of_mu(float(mu)) for mu in mus])  # (41, 2): C and dC/dmu
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(mus, cs[:, 0], label=r"$C(G)$")
ax.axhline(-math.log(4), ls=":", c="k", label=r"$-\log 4$")
ax.plot(mus, cs[:, 1], label=r"$dC/d\mu_g$")
ax.set_xlabel(r"$\mu_g$")
ax.legend()
c_far, slope_far = cs[-1].tolist()
slope_near = cs[mus.sub(1.0).abs().argmin(), 1].item()
print(f"C(mu=0) = {cs[0, 0]:.5f}, C(mu=10) = {c_far:.2e}; slope at 1: {slope_near:.3f}, at 10: {slope_far:.1e}")
assert abs(cs[0, 0] + math.log(4)) < 1e-6 and abs(c_far) < 1e-3
assert abs(slope_far) < 1e-3 * abs(slope_near)

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
# data $\mathcal N(1, 1)$. We train the discriminator against it (it gets good quickly), freeze it,
# and compare $|\partial \mathcal L_G / \partial \mu_g|$ for the two losses (`gan.g_loss_saturating`,
# `gan.g_loss_nonsaturating`), by autograd through the frozen network. Then we do the same with
# the analytic $l^*$ for a sweep of generators.

# %%
mu_g = torch.tensor(-4.0, requires_grad=True)
z = torch.randn(50_000, 1)
D_poor = make_discriminator()
train_discriminator(D_poor, x_real, (mu_g.detach() + torch.randn(n, 1)), steps // 4)
D_poor.requires_grad_(False)

fake_logits = D_poor(mu_g + z).squeeze(1)  # (50000,) logits of the fakes
grad_sat = torch.autograd.grad(gan.g_loss_saturating(fake_logits), mu_g, retain_graph=True)[0].item()
grad_ns = torch.autograd.grad(gan.g_loss_nonsaturating(fake_logits), mu_g)[0].item()
print(f"mean D(G(z)) = {torch.sigmoid(fake_logits).mean():.2e}")
print(f"dL/dmu_g  saturating: {grad_sat:.2e}   non-saturating: {grad_ns:.2e}")
assert grad_sat < 0 and grad_ns < 0  # both say "move mu_g to the right", towards the data
assert abs(grad_ns) > 10 * abs(grad_sat)

# %% [markdown]
# Both gradients point the right way, but the saturating one is more than ten times smaller,
# and the gap grows as the discriminator gets more confident.
# With the analytic optimal logit $l^*(x) = \log p_\text{data}(x) - \log p_g(x)$, held fixed
# while we differentiate through the samples, we can sweep the generator's mean:

# %%
def generator_grads(mu: float) -> tuple[float, float]:
    m = torch.tensor(mu, requires_grad=True)
    p_gen = Normal(mu, 1.0)  # frozen copy: D* does not move with the generator
    x = m + z.squeeze(1)  # (50000,) reparameterised fakes
    logits = p_data.log_prob(x) - p_gen.log_prob(x)  # l*(x)
    g_sat = torch.autograd.grad(gan.g_loss_saturating(logits), m, retain_graph=True)[0]
    g_ns = torch.autograd.grad(gan.g_loss_nonsaturating(logits), m)[0]
    return abs(g_sat.item()), abs(g_ns.item())


sweep = torch.linspace(-6, 0.5, 27)  # step 0.25
gs = torch.tensor([generator_grads(float(mu)) for mu in sweep])  # (27, 2)
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.semilogy(sweep, gs[:, 0], label="saturating  log(1 - D(G(z)))")
ax.semilogy(sweep, gs[:, 1], label="non-saturating  -log D(G(z))")
ax.set_xlabel(r"generator mean $\mu_g$ (data mean is 1)")
ax.set_ylabel(r"$|\partial \mathcal{L}_G / \partial \mu_g|$")
ax.legend()
ratio = gs[:, 1] / gs[:, 0]
print("ratio NS/sat at mu_g = -6, -4.5, -3, 0:", [round(float(ratio[i]), 1) for i in (0, 6, 12, 24)])
assert (ratio[:7] > 100).all()  # 4.5 or more standard deviations from the data: > 100x
assert (ratio.diff() < 0).all()  # and the gap grows the further the generator is from the data
assert generator_grads(1.0)[0] < 1e-6 and generator_grads(1.0)[1] < 1e-6  # same fixed point: p_g = p_data

# %% [markdown]
# ## Exercises
#
# **Exercise 1.** Write the discriminator loss $-\mathbb E[\log D(x)] - \mathbb E[\log(1 - D(G(z)))]$
# **from logits**, averaged over each batch. Do not call `torch.log(torch.sigmoid(...))`: use
# $-\log \sigma(l) = \operatorname{softplus}(-l)$ and $-\log(1 - \sigma(l)) = \operatorname{softplus}(l)$.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "ch02-ex1", "locked": false, "schema_version": 3, "solution": true, "task": false}
import torch.nn.functional as F


def discriminator_loss(real_logits, fake_logits):
    """-E[log D(x)] - E[log(1 - D(G(z)))] from logits (B,) and (B,); returns a scalar tensor."""
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
import torch.nn.functional as F  # noqa: F811 (exercise cells are self-contained)


def generator_loss(fake_logits):
    """-E[log D(G(z))] from the discriminator's logits (B,) on fakes; returns a scalar tensor."""
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
# | non-saturating loss | gradient $1 - D(G(z))$ instead of $D(G(z))$ | > 10× (trained D) and > 100× (optimal D) larger for a poor generator; same fixed point |
#
# The code lives in `course_lib.gan`: `d_loss`, `gan_value`, `g_loss_saturating`,
# `g_loss_nonsaturating`, `optimal_discriminator`. Chapter 3 trains a GAN on MNIST with them.
